package main

// Server reflection as grpc.reflection.v1, which current generic clients ask for first. grpc-go 1.33 (the
// version Debian packages) registers only v1alpha; v1 is the same protocol renamed, with messages of the same
// fields and numbers, so the v1alpha message types encode it byte for byte. This answers the three requests
// that discovery needs (list services, a file by symbol, a file by name) from the process's registry, the
// same source grpc-go's own v1alpha servicer reads.

import (
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

func registerReflectionV1(s *grpc.Server) {
	handler := func(_ interface{}, stream grpc.ServerStream) error {
		for {
			request := new(rpb.ServerReflectionRequest)
			if err := stream.RecvMsg(request); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			if err := checked(request); err != nil {
				return err
			}
			if err := stream.SendMsg(answerReflection(s, request)); err != nil {
				return err
			}
		}
	}
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "grpc.reflection.v1.ServerReflection",
		HandlerType: (*interface{})(nil),
		Streams: []grpc.StreamDesc{
			{StreamName: "ServerReflectionInfo", Handler: handler, ServerStreams: true, ClientStreams: true},
		},
		Metadata: "grpc/reflection/v1/reflection.proto",
	}, struct{}{})
}

func answerReflection(s *grpc.Server, request *rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
	response := &rpb.ServerReflectionResponse{ValidHost: request.Host, OriginalRequest: request}
	var file protoreflect.FileDescriptor
	var err error
	switch r := request.MessageRequest.(type) {
	case *rpb.ServerReflectionRequest_ListServices:
		services := &rpb.ListServiceResponse{}
		for name := range s.GetServiceInfo() {
			services.Service = append(services.Service, &rpb.ServiceResponse{Name: name})
		}
		response.MessageResponse = &rpb.ServerReflectionResponse_ListServicesResponse{ListServicesResponse: services}
		return response
	case *rpb.ServerReflectionRequest_FileContainingSymbol:
		var descriptor protoreflect.Descriptor
		descriptor, err = protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(r.FileContainingSymbol))
		if err == nil {
			file = descriptor.ParentFile()
		}
	case *rpb.ServerReflectionRequest_FileByFilename:
		file, err = protoregistry.GlobalFiles.FindFileByPath(r.FileByFilename)
	default:
		err = fmt.Errorf("this request is not supported by the v1 reflection service; ask v1alpha")
	}
	if err != nil {
		response.MessageResponse = &rpb.ServerReflectionResponse_ErrorResponse{ErrorResponse: &rpb.ErrorResponse{
			ErrorCode: int32(codes.NotFound), ErrorMessage: err.Error(),
		}}
		return response
	}
	files := &rpb.FileDescriptorResponse{}
	seen := map[string]bool{}
	var add func(protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) { // the file and everything it imports, each once
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		encoded, _ := proto.Marshal(protodesc.ToFileDescriptorProto(f)) // APIv2 registry, APIv2 encoding
		files.FileDescriptorProto = append(files.FileDescriptorProto, encoded)
		imports := f.Imports()
		for i := 0; i < imports.Len(); i++ {
			add(imports.Get(i).FileDescriptor)
		}
	}
	add(file)
	response.MessageResponse = &rpb.ServerReflectionResponse_FileDescriptorResponse{FileDescriptorResponse: files}
	return response
}

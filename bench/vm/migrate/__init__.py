"""`bench vm migrate`: live migration of a guest that serves a target under load, between two libvirts."""

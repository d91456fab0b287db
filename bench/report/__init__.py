"""The self-contained HTML report of a run, built from its raw files and tidy table only (`bench report`)."""

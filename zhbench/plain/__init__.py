"""Plain helpers below every room: safe text, byte sizes, model rows, memory readings, the redraw pace (which
the widgets and the workbench share), and the one whole-file writer, the kinds of file it refuses and the base
of zhbench's errors (which the engines use too). It imports nothing else of zhbench (nor Textual, nor a model
library), so a widget can show what the session builds without importing the workbench, and an engine can
write a file as durably as the session does."""

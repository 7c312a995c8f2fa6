"""Plain data and text helpers that the widgets and the workbench both use: safe text, byte sizes, model
rows, memory readings, the redraw pace. Below both, it imports nothing else of zhbench (nor Textual, nor a
model library), so a widget can show what the session builds without importing the workbench."""

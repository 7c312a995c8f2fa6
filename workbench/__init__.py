"""zhbench's workbench: the app, the command line, config and the transcript store."""

"""The app's screens: each one wiring widgets to a headless session."""

"""Engine tests: real SQLite files, a frozen clock, no mocks."""

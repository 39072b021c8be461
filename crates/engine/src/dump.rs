//! Test-mode dumps (filled in by the test-mode work).

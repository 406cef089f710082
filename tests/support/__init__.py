"""What the tests import: plain helpers (functions, classes, paths). Fixtures stay in tests/conftest.py,
where pytest finds them; nothing here is a fixture, so a test module imports from here, never from
conftest."""

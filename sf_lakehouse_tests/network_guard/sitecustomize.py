"""Loaded by every Python subprocess the tests start (this folder is put on PYTHONPATH by
`sf_lakehouse_tests/conftest.py`): the network guard, when SF_LAKEHOUSE_TEST_NETWORK_LOG is set."""

try:
    from sf_lakehouse_tests.network_guard import install_from_environment
except ImportError:  # a Python without the project installed: nothing to guard
    pass
else:
    install_from_environment()

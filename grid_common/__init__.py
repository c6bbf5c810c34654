"""Code the three services share because the logic is the same in each of them."""

# The one place the version is written: pyproject.toml, the OpenAPI documents and the images' labels read it
# from here, and tests/deployment/test_version.py checks the deployment files that must spell it out.
__version__ = "0.3.0"

"""What the installed package promises: its version and its type information."""

import pathlib
from importlib.metadata import version

import hesskit


def test_version_is_the_installed_distribution_version():
    assert hesskit.__version__ == version("hesskit")


def test_package_ships_its_type_marker():
    assert (pathlib.Path(hesskit.__file__).parent / "py.typed").is_file()

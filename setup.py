"""Map the top-level source folders into the ``adaptlab`` import namespace."""

from setuptools import find_packages, setup

SOURCE_FOLDERS = ("core", "registry", "plugins", "tuning")

packages = [
    f"adaptlab.{package}"
    for folder in SOURCE_FOLDERS
    for package in find_packages(include=[folder, f"{folder}.*"])
]

setup(packages=packages, package_data={"": ["*.yaml", "*.json", "*.lib"]})

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
version = {}
exec((HERE / "pescador" / "version.py").read_text(), version)

setup(
    name="pescador",
    version=version["version"],
    description="Stream data into machine-learning models: streamers, "
                "muxes, maps and background streaming over ZeroMQ",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="ISC",
    packages=find_packages(include=["pescador", "pescador.*"]),
    python_requires=">=3.9",
    install_requires=["numpy>=1.20", "pyzmq>=22"],
    extras_require={
        "tests": [
            "pytest>=7",
            "pytest-timeout>=2",
            "scipy>=1.6",
            # the examples' tests (tests/test_examples.py)
            "scikit-learn>=1.0",
            "matplotlib>=3.5",
        ],
        "demo": ["scikit-learn>=1.0"],
        # The framework adapters (pescador.adapters); the error message of
        # each adapter names its extra.
        "torch": ["torch>=2.0"],
        "keras": ["keras>=3.0"],
        "tensorflow": ["tensorflow>=2.16"],
        "docs": [
            "sphinx>=5",
            "numpydoc>=1.5",
            "matplotlib>=3.5",
            "sphinx-gallery>=0.17",
            "scikit-learn>=1.0",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Intended Audience :: Science/Research",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)

"""Sphinx configuration for the pescador documentation."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "_ext"))

import pescador  # noqa: E402

project = "pescador"
author = "the pescador developers"
copyright = "2016-2026, " + author
version = pescador.version.short_version
release = pescador.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    # before the gallery, whose thumbnails use its pictures
    "mux_pictures",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store",
                    "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5",
                    "auto_examples/*.pickle", "auto_examples/*.json"]
default_role = "py:obj"
root_doc = "index"

# -- API reference ------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# -- examples gallery ---------------------------------------------------
# Every script in examples/ runs during the build. Under CI (CI=true) or
# with PESCADOR_DOCS_QUICK=1 they get small sizes: see gallery_helpers.
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"\.py$",
    "ignore_pattern": r"__init__\.py",
    "reset_argv": "gallery_helpers.reset_argv",
    "within_subsection_order": "gallery_helpers.ExampleOrder",
    "remove_config_comments": True,
    "download_all_examples": False,
    "abort_on_example_error": True,
    "min_reported_time": 1,
    "show_memory": False,
    "matplotlib_animations": False,
    "write_computation_times": False,
}

# -- HTML ----------------------------------------------------------------
html_theme = "alabaster"
html_title = "pescador {}".format(release)
html_theme_options = {
    "description": "Stream data into machine-learning models",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "230px",
}

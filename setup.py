"""The compiled part of medmec: the dispatch router (workloads/dispatch/routing.py), its
safe-interval searches being the planner's hot loop. Cython compiles the same Python source
into an extension module that replaces it on import; nothing else differs.
Everything else about the package is declared in pyproject.toml."""
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize(
    [Extension("medmec.workloads.dispatch.routing", ["workloads/dispatch/routing.py"])],
    # the generated C stays out of the source tree
    build_dir="build/cython",
    compiler_directives={"language_level": 3, "infer_types": True}))

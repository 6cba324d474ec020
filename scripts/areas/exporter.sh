#!/usr/bin/env bash
# area: Python exporter tests (pytest): exporter, GRAPHS files, datasets, conformance goldens regenerated from PyG
# needs: python
# tools/python: the exporter, GRAPHS files, datasets, the conformance goldens (regenerated from
# PyG and compared, --check) and the example models. Cora tests run when $TINYGNN_DATA points to
# a folder holding Cora/raw/, else they skip.
source "$(dirname "$0")/../lib.sh"
need python
cd tools/python
"$TINYGNN_PYTHON" -m pytest -q

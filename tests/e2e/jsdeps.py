"""The pinned JavaScript test dependencies (tests/browser/package.json and
package-lock.json), installed by `make js-deps` (npm ci), which `make test`
runs. A test that needs one and finds it missing fails and says how to get
it; nothing is installed from inside a test."""
import os
import shutil

import pytest

JS_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..",
                                      "browser"))


def js_dir(*packages):
    """tests/browser, after checking node and each package are there."""
    if shutil.which("node") is None:
        pytest.fail("node is missing: install Debian's nodejs and npm "
                    "(make deps), then make js-deps")
    for p in packages:
        if not os.path.isfile(os.path.join(JS_DIR, "node_modules", p,
                                           "package.json")):
            pytest.fail("%s is missing from tests/browser/node_modules: run "
                        "make js-deps (npm ci from the committed "
                        "package-lock.json)" % p)
    return JS_DIR

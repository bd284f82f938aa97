"""web/gatekeeper.d.ts compiles with TypeScript (pinned in
tests/browser/package-lock.json, make js-deps) under --strict: a vendor's typical use passes,
and typical mistakes are caught, each on its own line."""
import os
import shutil
import subprocess

from browserutil import BROWSER
from jsdeps import js_dir

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def tsc(d, name):
    return subprocess.run(
        [os.path.join(BROWSER, "node_modules", ".bin", "tsc"), "--noEmit",
         "--strict", "--target", "es2022", "--module", "es2022",
         "--moduleResolution", "bundler", "--lib", "es2022,dom,dom.iterable",
         name], cwd=d, capture_output=True, text=True, timeout=120)


def test_declarations_compile_and_catch_mistakes(tmp_path):
    js_dir("typescript")
    shutil.copy(os.path.join(TOP, "web", "gatekeeper.d.ts"), tmp_path)
    for f in ("usage.ts", "misuse.ts"):
        shutil.copy(os.path.join(BROWSER, "types", f), tmp_path)
    p = tsc(str(tmp_path), "usage.ts")
    assert p.returncode == 0, p.stdout + p.stderr
    p = tsc(str(tmp_path), "misuse.ts")
    assert p.returncode != 0
    bad = sorted({int(line.split("(")[1].split(",")[0])
                  for line in p.stdout.splitlines()
                  if line.startswith("misuse.ts(")})
    assert bad == [5, 6, 7, 8, 9], p.stdout

"""Prints the code block that follows `<!-- paste-test: NAME -->` in README.md, so CI
runs the tests the README tells users to paste, exactly as written."""

import re
import sys

name, readme = sys.argv[1], open(sys.argv[2] if len(sys.argv) > 2 else "README.md").read()
m = re.search(rf"<!-- paste-test: {re.escape(name)} -->\n```\w*\n(.*?)\n```\n", readme, re.S)
if m is None:
    sys.exit(f"README.md has no paste-test block named {name}")
print(m.group(1))

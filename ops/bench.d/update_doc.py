"""Replace (or append) the <!-- SECTION --> block of a Markdown file: update_doc.py DOC SECTION NEWFILE."""
import re
import sys

doc, section, new = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().strip() + "\n"
text = open(doc).read()
start, end = f"<!-- {section} -->", f"<!-- /{section} -->"
block = f"{start}\n{new}{end}\n"
if start in text:
    text = re.sub(re.escape(start) + ".*?" + re.escape(end) + "\n?", lambda m: block, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + block
open(doc, "w").write(text)

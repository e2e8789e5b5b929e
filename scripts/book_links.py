#!/usr/bin/env python3
"""Every internal link of the built book (docs/book) resolves: the page exists and, for a
link with a #fragment, the page has an element with that id. Links that leave the book
(another site, or a repository file outside docs/src such as ../../template.yaml) are not
checked here: tests/tests/readme.rs checks that the files exist in the repository.

usage: scripts/book_links.py docs/book
"""
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.links.append(attrs["src"])


def main(book: Path) -> int:
    pages = {}
    for html in book.rglob("*.html"):
        page = Page()
        page.feed(html.read_text(encoding="utf-8"))
        pages[html.resolve()] = page
    if not pages:
        print(f"no pages under {book}: build it first (mdbook build docs)")
        return 1
    broken, checked = [], 0
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("mailto:"):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            # Outside the built book: a repository file, checked by the Rust test.
            if book.resolve() not in target.parents and target != book.resolve():
                continue
            checked += 1
            if not target.exists():
                broken.append(f"{path.relative_to(book.resolve())}: {link} (no such page)")
            elif parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in pages[target].ids:
                    broken.append(f"{path.relative_to(book.resolve())}: {link} (no such anchor)")
    for line in broken:
        print(line)
    print(f"{checked} internal links checked in {len(pages)} pages, {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/book")))

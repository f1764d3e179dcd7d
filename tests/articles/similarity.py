"""The near-duplicate measures the article tests use (and docs/design-notes.md reports).

- ``shingle_jaccard``: Jaccard similarity of the sets of 5-word shingles of two texts, with
  every number masked (the usual near-duplicate measure of search engines and plagiarism
  checkers).
- ``sentence_overlap``: the share of the shorter article's sentences (five words or more,
  numbers and the ticker masked) that the other article contains word for word.
"""

from __future__ import annotations

import re

_BLOCK = re.compile(r"</(p|li|h[1-6]|tr|caption|figcaption|td|th)>|<br\s*/?>", re.I)
_TAGS = re.compile(r"<[^>]+>")
_NUMBER = re.compile(r"[-+−]?\$?\d[\d,.]*%?")


def article_text(html: str) -> str:
    """Plain text with one line per block element."""
    text = _BLOCK.sub("\n", html)
    text = _TAGS.sub(" ", text)
    for entity, char in (("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'),
                         ("&#39;", "'"), ("&nbsp;", " ")):
        text = text.replace(entity, char)
    return text


def mask(text: str, *names: str) -> str:
    for name in names:
        if name:
            text = re.sub(r"(?<![\w])" + re.escape(name) + r"(?![\w])", "NAME", text)
    return _NUMBER.sub("#", text)


def shingles(text: str, size: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"[\w#%$'-]+", text.lower())
    return {tuple(words[i:i + size]) for i in range(max(0, len(words) - size + 1))}


def shingle_jaccard(a: str, b: str, size: int = 5) -> float:
    sa, sb = shingles(a, size), shingles(b, size)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def sentences(text: str, min_words: int = 5) -> set[str]:
    out = set()
    for line in text.splitlines():
        for sentence in re.split(r"(?<=[.!?])\s+", line):
            words = re.findall(r"[a-z][a-z'-]*|#|name", sentence.lower())
            if sum(1 for w in words if w not in ("#", "name")) >= min_words:
                out.add(" ".join(words))
    return out


def sentence_overlap(a: str, b: str) -> float:
    sa, sb = sentences(a), sentences(b)
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / min(len(sa), len(sb))

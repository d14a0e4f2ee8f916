"""What a text means to the search index: its terms. One analysis for passages and questions, on
every database, so that a search means the same wherever it runs.

- Words are lowercased; English words lose their endings (Snowball's English stemmer: "flows",
  "flowing" and "flow" are one term).
- Chinese, Japanese and Korean are written without spaces: a run of those characters becomes its
  overlapping character pairs (one character alone stays itself), so "离心泵" matches "离心".
- Words too common to say anything about a passage (STOP) are left out of questions; passages
  keep them, so that a later change of the list needs no new index.
- A term longer than MAX_TERM characters (a hash, a base64 run) is not a word anyone asks for.
"""

import functools
import re

import Stemmer

from kimi import catalogue

MAX_TERM = 40
WORD = re.compile(r"[^\W_]+")
RUNS = re.compile(f"{catalogue.CJK.pattern}+|(?:(?!{catalogue.CJK.pattern}).)+")
# Snowball's English stop words, and the Chinese particles a question is made of.
STOP = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is
    it its itself just me more most my myself no nor not now of off on once only or other our
    ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves 的 了 是 在 和 有 吗 呢 么 什 哪 怎""".split()
)
_stemmer = Stemmer.Stemmer("english")


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    # A library's words repeat: each is stemmed once per process.
    return _stemmer.stemWord(word)


def terms(text: str) -> list[str]:
    """The terms of a text, in order, repeats kept (they weigh: term frequency)."""
    found = []
    for word in WORD.findall(text.lower()):
        # Most words are plain ASCII: stemmed at once, without looking for CJK runs.
        if word.isascii():
            if len(word) <= MAX_TERM:
                found.append(_stem(word))
        else:
            found += _mixed(word)
    return found


def _mixed(word: str) -> list[str]:
    found = []
    for run in RUNS.findall(word):
        if not catalogue.CJK.match(run):
            if len(run) <= MAX_TERM:
                found.append(_stem(run) if run.isascii() else run)
        elif len(run) == 1:
            found.append(run)
        else:
            found += [run[i : i + 2] for i in range(len(run) - 1)]
    return found


def query_terms(text: str) -> list[str]:
    """A question's terms without the stop words; a word asked twice counts twice."""
    found = []
    for word in WORD.findall(text.lower()):
        if word not in STOP:
            found += [t for t in terms(word) if t not in STOP]
    return found

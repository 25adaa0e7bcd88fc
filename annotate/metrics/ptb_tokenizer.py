"""A Java-free tokenizer that reproduces what coco-caption's evaluation does to a caption: the
Stanford PTB tokenizer (CoreNLP 3.4.1, `-preserveLines -lowerCase`) followed by pycocoevalcap's
removal of punctuation tokens.

It is written against the reference tokenization of the 6005 captions of the coco-caption demo
(equal on all of them); see docs/stage2.md for the rules and the cases it does not cover.
"""

from __future__ import annotations

import re
import unicodedata

#: The tokens pycocoevalcap drops after tokenizing (its PUNCTUATIONS list).
PUNCTUATION = frozenset({"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!",
                         ",", ":", "-", "--", "...", ";"})

# Abbreviations after which PTBLexer keeps the period (titles, streets, months, companies, ...).
_ABBREVIATION_TEXT = """
    mr mrs ms miss dr drs prof profs sen sens rep reps
    atty attys lt col gen messrs gov govs adm rev maj sgt
    cpl pvt capt st ste ave pres lieut hon brig cmdr comdr
    pfc spc supt supts det mme mlle jr sr bros blvd rd
    esq inc co cos corp pty ltd plc dept assn univ intl
    sys mfg mtg natl elec jan feb mar apr jun jul aug
    sep sept oct nov dec mon tue tues wed thu thurs fri
    ala ariz ark calif colo conn del fla ga ill ind kan
    kans ky la md mass mich minn miss mo mont neb nev
    okla ore pa penn tenn tex va vt wash wis wisc wyo
    etc vs esp no nos ft fig figs approx al cf mt
    pt tel est ext sq dist ph ed
"""
_ABBREVIATIONS = frozenset(_ABBREVIATION_TEXT.split())
# Written lower-case, these stay abbreviations; the others ("No.", "St.") must be capitalised.
_LOWER_CASE_ABBREVIATIONS = frozenset({"etc", "vs", "cf", "al", "approx", "esp", "ft", "est",
                                       "ext", "sq", "tel", "fig", "figs"})
_CLITIC = re.compile(r"(?i)^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$")
_SPECIAL_SPLITS = {"cannot": ("can", "not"), "gonna": ("gon", "na"), "gotta": ("got", "ta"),
                   "wanna": ("wan", "na"), "gimme": ("gim", "me"), "lemme": ("lem", "me")}
_LEADING_APOSTROPHE_WORDS = re.compile(r"(?i)^'(?:em|tis|twas|cause|till?|n|\d0s)$")
# A word: letters/digits joined by single hyphens, apostrophes, slashes, ampersands or
# periods; digits also by commas and colons (1,000 and 5:55).
_WORD = re.compile(r"[^\W_]+(?:(?:[-'/&.]|(?<=\d)[,:](?=\d))[^\W_]+)*")
_ACRONYM = re.compile(r"^(?:[^\W\d_]\.)+[^\W\d_]?$|^[^\W\d_](?:\.[^\W\d_])+\.?$")
_BRACKETS = {"(": "-LRB-", ")": "-RRB-", "[": "-LSB-", "]": "-RSB-", "{": "-LCB-", "}": "-RCB-"}
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                         "\u2032": "'", "\u2026": "...", "\u2013": "--", "\u2014": "--"})


def ptb_tokens(text: str) -> list[str]:
    """The Stanford PTB tokens of one caption, before lower-casing and punctuation removal."""
    text = unicodedata.normalize("NFC", str(text)).translate(_QUOTES)
    tokens: list[str] = []
    for chunk in text.split():
        tokens.extend(_chunk_tokens(chunk))
    return tokens


def tokenize(text: str) -> list[str]:
    """What coco-caption scores: PTB tokens, lower-cased, without punctuation tokens."""
    return [token.lower() for token in ptb_tokens(text)
            if token not in PUNCTUATION and token.lower() not in PUNCTUATION]


def _chunk_tokens(chunk: str) -> list[str]:
    """Tokens of one whitespace-delimited chunk: leading symbols, the words, trailing symbols."""
    head: list[str] = []
    tail: list[str] = []
    kept_period = False
    while chunk:
        if chunk.startswith("``") or chunk.startswith("--") or chunk.startswith("..."):
            width = 3 if chunk.startswith("...") else 2
            head.append(chunk[:width])
            chunk = chunk[width:]
        elif chunk[0] == "'" and not _LEADING_APOSTROPHE_WORDS.match(chunk.rstrip(".,;:!?\"')")):
            head.append("`")
            chunk = chunk[1:]
        elif chunk[0] in "\"`([{$#@*+=<>~^|\\%&,;:!?":
            head.append("``" if chunk[0] == '"' else _BRACKETS.get(chunk[0], chunk[0]))
            chunk = chunk[1:]
        else:
            break
    while chunk:
        if chunk.endswith("..."):
            tail.append("...")
            chunk = chunk[:-3]
        elif chunk.endswith("--"):
            tail.append("--")
            chunk = chunk[:-2]
        elif chunk[-1] == "." and (_keeps_period(chunk) or tail[-1:] == [","]):
            kept_period, chunk = True, chunk[:-1]  # "Rd." and "bat.," keep their period
            break
        elif chunk[-1] in "\"')]}.,;:?!%*+=<>~^|\\-&#$@/":
            last = chunk[-1]
            tail.append("''" if last == '"' else _BRACKETS.get(last, last))
            chunk = chunk[:-1]
        else:
            break
    middle = _middle_tokens(chunk)
    if kept_period:
        middle[-1:] = [middle[-1] + "."] if middle else ["."]
    return head + middle + tail[::-1]


def _keeps_period(chunk: str) -> bool:
    """PTBLexer keeps a final period on abbreviations, acronyms (U.S.) and initials (J.)."""
    word = chunk[:-1]
    start = max(word.rfind(c) for c in "\"'([{") + 1 if any(c in word for c in "\"'([{") else 0
    word = word[start:]
    if not word:
        return False
    if word.lower() in _ABBREVIATIONS and (word[0].isupper() or word in _LOWER_CASE_ABBREVIATIONS):
        return True
    if _ACRONYM.match(chunk[start:]):
        return True
    return len(word) == 1 and word.isalpha() and word.isupper()


def _middle_tokens(chunk: str) -> list[str]:
    """Words (with clitics split) and the symbols between them."""
    out: list[str] = []
    position = 0
    for match in _WORD.finditer(chunk):
        out.extend(_symbols(chunk[position:match.start()]))
        out.extend(_split_word(match.group()))
        position = match.end()
    out.extend(_symbols(chunk[position:]))
    return out


def _symbols(text: str) -> list[str]:
    out = []
    for run in re.finditer(r"\.\.\.|--|``|''|\S", text):
        symbol = run.group()
        out.append("``" if symbol == '"' else _BRACKETS.get(symbol, symbol))
    return out


def _split_word(word: str) -> list[str]:
    """n't, 's, 're, 've, 'll, 'd and 'm become their own tokens, as in the Penn Treebank."""
    special = _SPECIAL_SPLITS.get(word.lower())
    if special:
        return [word[:len(special[0])], word[len(special[0]):]]
    match = _CLITIC.match(word)
    if match and match.group(1):
        stem, clitic = match.groups()
        return [*_split_word(stem), clitic]
    return [word]

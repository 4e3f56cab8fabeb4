"""The shared text helpers: sentences, script, shortening, display width."""

from __future__ import annotations

from digest.text import display_width, looks_korean, shorten, split_sentences


def test_abbreviations_and_initialisms_do_not_end_a_sentence() -> None:
    text = (
        "The U.S. Army tested it. Dr. Kim led the work, e.g. the field trials. "
        "J. K. Rowling wrote about it vs. the others. It ended."
    )
    assert split_sentences(text) == [
        "The U.S. Army tested it.",
        "Dr. Kim led the work, e.g. the field trials.",
        "J. K. Rowling wrote about it vs. the others.",
        "It ended.",
    ]


def test_korean_and_plain_sentences_still_split() -> None:
    assert split_sentences("모델을 공개했다.성능이 좋다. Then it shipped! Done?  Yes") == [
        "모델을 공개했다.",
        "성능이 좋다.",
        "Then it shipped!",
        "Done?",
        "Yes",
    ]
    assert split_sentences("It costs 3.5 dollars. Fine.") == ["It costs 3.5 dollars.", "Fine."]


def test_looks_korean() -> None:
    assert looks_korean("오픈AI가 새 모델을 공개했다")
    assert not looks_korean("OpenAI released a new model 모델")
    assert not looks_korean("")


def test_shorten_cuts_at_a_word_with_an_ellipsis_within_the_limit() -> None:
    assert shorten("short", 10) == "short"
    cut = shorten("alpha beta gamma delta epsilon", 20)
    assert cut == "alpha beta gamma…" and len(cut) <= 20
    assert shorten("x" * 50, 10) == "x" * 9 + "…"  # no space in reach: a hard cut
    assert shorten("one two three, four", 16) == "one two three…"  # no dangling comma


def test_display_width_counts_clusters_like_a_terminal() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # ZWJ sequence: one glyph
    assert display_width(family) == 2
    assert display_width("a\u200bb") == 2  # zero-width space takes no column
    assert display_width("한국어") == 6
    assert display_width("e\u0301") == 1  # combining accent
    assert display_width("plain") == 5

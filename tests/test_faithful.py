"""The faithfulness check: unsupported figures, dates and quotes are flagged, supported ones not."""

from __future__ import annotations

import pytest

from digest.faithful import unsupported_claims
from digest.models import Bullet

SOURCE = (
    "Mistral Large 2 has 123 billion parameters and a 128k context window. "
    "It was trained on 15 trillion tokens using 16,000 H100 GPUs, and inference is about 50% "
    "cheaper. The model was released on July 24, 2024 after ten months of work. "
    'The CEO said "we want the best open model in the world" at the launch. '
    "Revenue reached $1.1 billion and the team has 1,230 people."
)


def flags(*texts: str, source: str = SOURCE) -> list[str]:
    return unsupported_claims([Bullet(text=t) for t in texts], source)


@pytest.mark.parametrize(
    "bullet",
    [
        "1230억 개의 파라미터로 구성됨",  # 123 billion in Korean units
        "123B 파라미터 모델",
        "128K 컨텍스트 윈도우 지원",
        "128,000 토큰 컨텍스트",
        "15조 개 이상의 토큰으로 훈련됨",
        "1만 6천 개의 H100 GPU 사용",
        "16000개 GPU 사용",
        "추론 비용이 약 50% 저렴함",
        "2024년 7월 24일 공개됨",
        "7월 24일 출시",
        "released 2024-07-24",
        "10개월의 작업 끝에 공개",  # "ten months" in words
        "매출 11억 달러 달성",  # $1.1 billion
        "1,230명의 팀",
        'CEO: "we want the best open model in the world"',
        "'세계 최고의 오픈 모델'을 원한다고 밝힘",  # a translated quote is not checked
        "GPT-4o와 비교하여 3가지 장점",  # single digits are too common to judge
    ],
)
def test_supported_figures_are_not_flagged(bullet: str) -> None:
    assert flags(bullet) == []


@pytest.mark.parametrize(
    ("bullet", "expected"),
    [
        ("1240억 개의 파라미터", "1240억"),
        ("추론 비용이 약 70% 저렴함", "'70'"),
        ("2024년 8월 1일 공개됨", "date 2024-08-01"),
        ("released on July 25", "date 07-25"),
        ("매출 12억 달러 달성", "12억"),
        ("2만 4천 개의 GPU", "2만 4천"),
        ('The CEO said "we will dominate the market soon"', "quoted phrase"),
        ("5% 성능 향상", "'5'"),
    ],
)
def test_unsupported_figures_are_flagged(bullet: str, expected: str) -> None:
    warnings = flags(bullet)
    assert len(warnings) == 1, warnings
    assert expected in warnings[0]


def test_nested_bullets_are_checked_and_named() -> None:
    bullets = [Bullet(text="개요", children=[Bullet(text="파라미터 999개", children=[])])]
    warnings = unsupported_claims(bullets, SOURCE)
    assert [(w.code, w.message) for w in warnings] == [
        ("figure-not-in-source", "figure '999' not found in the source: \"파라미터 999개\"")
    ]


def test_empty_source_flags_nothing() -> None:
    assert flags("1234 items", source="  ") == []


def test_apostrophes_are_not_quotes() -> None:
    source = "It's fast and it doesn't crash."
    assert flags("It's fast and it doesn't crash, they're happy", source=source) == []


def test_markdown_in_source_does_not_hide_a_quote() -> None:
    source = 'He said "the **fastest** [release](https://x.test) yet" on stage.'
    assert flags('"the fastest release yet"', source=source) == []

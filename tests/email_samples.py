"""Composed issues for the email tests and benchmarks: Korean and English, long URLs and words."""

from __future__ import annotations

import datetime as dt
from typing import Any

from digest.config import Settings
from digest.models import Bullet, Closing, Issue, Item, Section

LONG_URL = (
    "https://docs.example.com/reference/2026/very/deeply/nested/path/"
    "that-keeps-going-and-going-without-any-break/index.html?utm_source=newsletter&section=ai"
    "&token=abcdefghijklmnopqrstuvwxyz0123456789"
)
LONG_WORD = "Supercalifragilisticexpialidocious" * 3
LONG_IDENTIFIER = "`AbstractSingletonProxyFactoryBeanConfigurationRegistryInitializer`"

KO = [
    "주문 서비스 팀은 작년 가을부터 스프링 기반 주문 서비스에 "
    "코틀린 코루틴을 단계적으로 도입했습니다.",
    "도입 후 주문 생성 API의 평균 응답 시간은 320ms에서 140ms로 줄었고, "
    "인스턴스 수는 12대에서 7대로 줄었습니다.",
    "모든 코루틴을 요청 스코프 안에서 시작하도록 **규칙**을 정한 뒤에야 이 문제가 사라졌습니다.",
    "팀은 블로킹 호출을 `Dispatchers.IO`로 감싸는 래퍼를 만들고 "
    "[가이드](https://kotlinlang.org/docs/coroutines-guide.html)를 공유했습니다.",
]
EN = [
    "The release adds incremental materialized views that refresh only the rows that changed.",
    "Refresh time fell by *90 percent* in the project's own benchmarks on a 2 TB dataset.",
    "A new planner handles queries with many joins; see [the notes](https://www.postgresql.org/docs/release/).",
    "Upgrades from version 17 need a `pg_upgrade` run and about 4 minutes of downtime per 100 GB.",
]
SECTIONS = ["AI", "개발", "Culture"]


def sample_item(index: int, *, long_parts: bool = False) -> Item:
    """A realistic item: three bullets with one or two detail bullets each, sometimes a note."""
    korean = index % 2 == 1
    texts = KO if korean else EN
    bullets = [
        Bullet(
            text=texts[k % 4],
            children=[Bullet(text=texts[(k + c + 1) % 4]) for c in range(1 + k % 2)],
        )
        for k in range(3)
    ]
    if long_parts:
        bullets.append(
            Bullet(
                text=f"전체 문서는 {LONG_URL} 에 있습니다.",
                children=[Bullet(text=f"{LONG_WORD} and {LONG_IDENTIFIER} stay readable.")],
            )
        )
    return Item(
        title=(
            f"코루틴 도입 {index}년, 우리 팀이 배운 것들"
            if korean
            else f"Postgres {index} ships incremental views"
        ),
        url=f"https://tech.example.com/posts/{index:03d}/incremental-views-and-coroutines",
        translated_title=None if korean else f"포스트그레스 {index}, 증분 뷰를 내놓다",
        site_name="물결 기술 블로그" if korean else "Postgres Weekly",
        bullets=bullets,
        note="한 번 읽어볼 만한 글입니다. 특히 **취소** 부분." if index % 5 == 0 else None,
    )


def sample_issue(items: int = 12, *, long_parts: bool = False, sections: bool = True) -> Issue:
    """An issue of `items` items spread over three sections, with an intro and a closing."""
    groups: list[list[Item]] = [[] for _ in SECTIONS] if sections else [[]]
    for index in range(items):
        groups[index % len(groups)].append(sample_item(index, long_parts=long_parts and index < 3))
    names: list[str | None] = list(SECTIONS) if sections else [None]
    return Issue(
        title="Article Weekly, Issue 7",
        number=7,
        date=dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=9))),
        period_start=dt.date(2026, 11, 15),
        period_end=dt.date(2026, 11, 21),
        authors=["Editor"],
        intro="이번 호에서는 **증분 뷰**와 코루틴 도입기를 다룹니다.\n\n즐겁게 읽어 주세요.",
        sections=[
            Section(name=name, items=group) for name, group in zip(names, groups, strict=True)
        ],
        closing=Closing(
            title="정리", bullets=[Bullet(text="이번 주의 공통 주제는 **측정**입니다.")]
        ),
    )


def sample_settings(**email: Any) -> Settings:
    """Settings for a Korean newsletter with sections, a web_url and an unsubscribe link."""
    return Settings.model_validate(
        {
            "newsletter": {
                "name": "Article Weekly",
                "language": "ko",
                "web_url": "https://blog.example/posts/issue-{number}/",
            },
            "sections": [{"name": name} for name in SECTIONS],
            "email": {"unsubscribe": "mailto:leave@example.com?subject=unsubscribe", **email},
        }
    )

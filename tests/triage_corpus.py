"""A generated test corpus for triage: stories x sites, as article pages and an RSS feed.

Every story has facts (names, figures, a kind of news) drawn from a seeded generator; each
site that covers it writes its own title, lede and body from its own templates, so the same
story reads differently on each site, as rewrites do. Some stories are covered by two to four
sites (the duplicate groups, some of them in Korean), most by one. The first site of a group
is the original publisher: it is the earliest, and the others link to it. Stories are on the
focus (AI models and developer tools) or off it (sport, cooking, property, travel).
"""

from __future__ import annotations

import datetime as dt
import html
import random
from dataclasses import dataclass, field

FOCUS = (
    "AI models, machine learning research and developer tools: new language models, "
    "open-source libraries, programming languages, compilers and coding assistants."
)

_SYL = "ka ri to mu sen vo la zen qui dra mon tel fex nor pli sta gro bel vin cor dax lum"
_SYLLABLES = _SYL.split()
_KO_SYLLABLES = (
    "가 나 다 라 마 바 사 아 자 차 카 타 파 하 누 리 소 한 빛 온 별 솔 결 담 윤 진 혜 민 "
    "준 서 연 우 채 도 현 규 석 찬 율 경 훈 영 태 성 호 은 미 란 주 희 재 원 상 철 용"
).split()

EN_SITES = [
    "technewsdaily",
    "devwire",
    "thecodeledger",
    "bytebulletin",
    "stackjournal",
    "airadar",
    "morningbrief",
    "cityherald",
    "weeklyobserver",
    "digitaltimes",
    "opensourcenow",
    "pressroom",
]
KO_SITES = ["itdonga", "techplusko", "devnewskr", "aitimeskr"]


@dataclass
class Story:
    """One piece of news: its facts and whether it is on the focus."""

    id: int
    topic: str
    on_topic: bool
    korean: bool
    facts: dict[str, str]


@dataclass
class Entry:
    """One feed entry: a page on a site about a story."""

    path: str
    site: str
    story: int
    title: str
    lede: str
    body: list[str]
    published: dt.datetime
    on_topic: bool
    korean: bool
    links_to: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _name(rng: random.Random, syllables: list[str], parts: int) -> str:
    return "".join(rng.choice(syllables) for _ in range(parts))


def _en_facts(rng: random.Random, topic: str) -> dict[str, str]:
    company = _name(rng, _SYLLABLES, 3).capitalize()
    product = _name(rng, _SYLLABLES, 2).capitalize()
    number = str(rng.randint(2, 97))
    if topic == "model":
        return {
            "company": company + " Labs",
            "product": f"{product}-{rng.randint(2, 9)}",
            "kind": "language model",
            "feature": rng.choice(["a long context window", "image understanding", "tool use"]),
            "figure": f"{number} billion parameters",
            "verb": "releases",
        }
    if topic == "library":
        return {
            "company": company + " Foundation",
            "product": f"{product}DB {rng.randint(1, 9)}.{rng.randint(0, 9)}",
            "kind": "open-source database library",
            "feature": rng.choice(["vector search", "a new query planner", "async drivers"]),
            "figure": f"{number} percent faster queries",
            "verb": "ships",
        }
    if topic == "tooling":
        return {
            "company": company,
            "product": f"{product} Code",
            "kind": "coding assistant for programmers",
            "feature": rng.choice(["compiler integration", "test generation", "code review"]),
            "figure": f"{number} programming languages",
            "verb": "launches",
        }
    if topic == "sport":
        return {
            "company": f"{company} City",
            "product": f"{product} Rovers",
            "kind": "football final",
            "feature": rng.choice(["a late penalty", "extra time", "a record crowd"]),
            "figure": f"{number} thousand fans",
            "verb": "beats",
        }
    if topic == "cooking":
        return {
            "company": f"chef {company}",
            "product": f"{product} stew",
            "kind": "winter recipe",
            "feature": rng.choice(["smoked paprika", "slow-roasted garlic", "fresh basil"]),
            "figure": f"{number} minutes of cooking",
            "verb": "shares",
        }
    return {
        "company": f"{company}ville",
        "product": f"{product} Tower",
        "kind": "property market report",
        "feature": rng.choice(["rising rents", "new housing permits", "falling prices"]),
        "figure": f"{number} percent more sales",
        "verb": "reports",
    }


def _ko_facts(rng: random.Random) -> dict[str, str]:
    return {
        "company": _name(rng, _KO_SYLLABLES, 3) + "랩스",
        "product": _name(rng, _KO_SYLLABLES, 2) + "엑스",
        "kind": "초거대 언어 모델",
        "feature": rng.choice(["한국어 문서 이해", "긴 문맥 처리", "코드 생성"]),
        "figure": f"{rng.randint(2, 97)}개 언어",
    }


EN_TITLES = [
    "{company} {verb} {product} with {feature}",
    "{product} is here: the new {kind} from {company}",
    "Hands-on with {product}, {company}'s {kind}",
    "{company}'s {product} brings {feature} and {figure}",
]
EN_LEDES = [
    "{company} announced {product}, a {kind} with {feature}. It comes with {figure}.",
    "The new {kind}, called {product}, offers {feature}, according to {company}, and {figure}.",
    "We tried {product}. The {kind} by {company} promises {feature} and counts {figure}.",
    "{product} arrived this week from {company}: a {kind} built around {feature}, with {figure}.",
]
KO_TITLES = [
    "{company}, {kind} {product} 공개… {feature} 강화",
    "{product} 출시한 {company}, {figure} 지원하는 {kind}",
    "[리뷰] {company}의 새 {kind} {product} 써보니",
]
KO_LEDES = [
    "{company}는 {kind} {product}를 공개했다. {feature} 성능을 높였고 {figure}를 지원한다.",
    "{company}가 내놓은 {product}는 {figure}를 지원하는 {kind}로, {feature} 기능이 특징이다.",
    "직접 써본 {product}는 {company}의 {kind}다. {feature} 능력이 돋보이며 {figure}를 다룬다.",
]
FILLER = [
    "Readers asked us what this means for them, and the short answer is that it depends.",
    "Several people we spoke to expect more announcements of this sort in the coming months.",
    "Prices and availability vary by region, and details may change before the final date.",
    "As always, the first reactions online were mixed, with some enthusiasm and some doubt.",
    "Our newsroom will follow the story and update this page when more is known.",
]
KO_FILLER = [
    "업계에서는 이번 발표가 시장에 어떤 영향을 줄지 주목하고 있다.",
    "구체적인 가격과 출시 일정은 아직 공개되지 않았다.",
    "전문가들은 앞으로 비슷한 발표가 이어질 것으로 내다봤다.",
]

TOPICS_ON = ["model", "library", "tooling"]
TOPICS_OFF = ["sport", "cooking", "property"]


def build(seed: int = 7, total: int = 300) -> list[Entry]:
    """The corpus: `total` entries; group sizes and labels are fixed by the seed."""
    rng = random.Random(seed)
    base = dt.datetime(2026, 11, 16, 8, 0, tzinfo=dt.UTC)
    plan: list[tuple[int, bool]] = (
        [(3, False)] * 40 + [(2, False)] * 20 + [(4, False)] * 4 + [(3, True)] * 6 + [(2, True)] * 4
    )
    used = sum(size for size, _ in plan)
    korean_singles = 10
    plan += [(1, True)] * korean_singles + [(1, False)] * (total - used - korean_singles)
    rng.shuffle(plan)
    entries: list[Entry] = []
    for story_id, (size, korean) in enumerate(plan):
        on_topic = korean or rng.random() < 0.5
        topic = rng.choice(TOPICS_ON if on_topic else TOPICS_OFF)
        facts = _ko_facts(rng) if korean else _en_facts(rng, topic)
        story = Story(story_id, topic, on_topic, korean, facts)
        sites = rng.sample(KO_SITES if korean else EN_SITES, size)
        original: str | None = None
        first_day = base + dt.timedelta(hours=rng.randint(0, 100))
        styles = rng.sample(range(len(KO_TITLES if korean else EN_TITLES)), min(size, 3))
        for n, site in enumerate(sites):
            style = styles[n % len(styles)]
            if korean:
                title = KO_TITLES[style].format(**facts)
                lede = KO_LEDES[style].format(**facts)
                body = [lede, *rng.sample(KO_FILLER, 2)]
            else:
                title = EN_TITLES[style].format(**facts)
                lede = EN_LEDES[style].format(**facts)
                body = [lede, *rng.sample(FILLER, 3)]
            path = f"/{site}/story-{story.id}-{n}"
            entries.append(
                Entry(
                    path=path,
                    site=site,
                    story=story.id,
                    title=title,
                    lede=lede,
                    body=body,
                    published=first_day + dt.timedelta(hours=3 * n),
                    on_topic=on_topic,
                    korean=korean,
                    links_to=original,
                    extra={"topic": topic},
                )
            )
            original = original or path
    rng.shuffle(entries)
    return entries


def page_html(entry: Entry, base_url: str) -> str:
    """The article page of an entry (with a link to the original when it is a rewrite)."""
    esc = html.escape
    paragraphs = "".join(f"<p>{esc(p)}</p>" for p in entry.body)
    if entry.links_to:
        word = "원문" if entry.korean else "First reported by"
        paragraphs += f"<p>{word}: <a href='{base_url}{entry.links_to}'>the original</a>.</p>"
    lang = "ko" if entry.korean else "en"
    return (
        f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'>"
        f"<title>{esc(entry.title)}</title>"
        f"<meta property='og:site_name' content='{esc(entry.site)}'>"
        f"<meta property='article:published_time' content='{entry.published.isoformat()}'>"
        f"</head><body><nav><a href='/'>Home</a></nav>"
        f"<article><h1>{esc(entry.title)}</h1>{paragraphs}</article>"
        f"<footer>© {esc(entry.site)}</footer></body></html>"
    )


def feed_xml(entries: list[Entry], base_url: str) -> str:
    """An RSS feed listing every entry (with its title, lede and date)."""
    items = []
    for entry in entries:
        stamp = entry.published.strftime("%a, %d %b %Y %H:%M:%S +0000")
        items.append(
            f"<item><title>{html.escape(entry.title)}</title>"
            f"<link>{base_url}{entry.path}</link>"
            f"<description>{html.escape(entry.lede)}</description>"
            f"<pubDate>{stamp}</pubDate></item>"
        )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        "<title>All the news</title><link>http://example.test/</link>"
        "<description>test feed</description>" + "".join(items) + "</channel></rss>"
    )


def true_pairs(entries: list[Entry], *, korean: bool | None = None) -> set[tuple[str, str]]:
    """Pairs of paths that report the same story (optionally only Korean or only English)."""
    by_story: dict[int, list[str]] = {}
    for entry in entries:
        if korean is None or entry.korean == korean:
            by_story.setdefault(entry.story, []).append(entry.path)
    return {
        (min(a, b), max(a, b))
        for paths in by_story.values()
        for i, a in enumerate(paths)
        for b in paths[i + 1 :]
    }

"""Small English and Chinese handbook texts cut into passages/sections with exact offsets,
shared by the grounding tests (with and without a model)."""

from __future__ import annotations

from assistant.answer_models import SourceSection
from retrieval.models import Passage

EN_DOC = (
    "Employee Handbook\n\n"
    "Annual leave. Full-time employees receive 25 days of paid annual leave per calendar year. "
    "Unused leave of up to 5 days may be carried over to the next year; the rest expires on 31 March.\n\n"
    "Remote work. Employees may work from home up to two days per week with their manager's approval. "
    "Equipment for home offices is provided by the IT department.\n\n"
    "Expenses. Meals on business trips are reimbursed up to 40 EUR per day. "
    "Receipts must be submitted within 30 days of the trip."
)
ZH_DOC = (
    "员工手册\n\n"
    "年假规定。全职员工每个日历年享有25天带薪年假。未使用的年假最多可结转5天至下一年，其余部分于3月31日失效。\n\n"
    "远程办公。经经理批准，员工每周最多可在家办公两天。家庭办公设备由IT部门提供。"
)


def passages_of(doc: str, starts: list[str], title: str = "Handbook") -> list[Passage]:
    """Passages cut from ``doc`` at the paragraphs beginning with each of ``starts``."""
    out = []
    for i, head in enumerate(starts):
        a = doc.index(head)
        b = doc.find("\n\n", a)
        b = len(doc) if b == -1 else b
        out.append(
            Passage(
                chunk_ids=[f"c{i}"],
                document_id="doc-1",
                collection="hr",
                path="hr/handbook.pdf",
                title=title,
                text=doc[a:b],
                start=a,
                end=b,
                page=i + 1,
                score=1.0 - i / 10,
            )
        )
    return out


EN_PASSAGES = passages_of(EN_DOC, ["Annual leave.", "Remote work.", "Expenses."])
ZH_PASSAGES = passages_of(ZH_DOC, ["年假规定。", "远程办公。"])


SECTIONS = [
    SourceSection(label=f"p. {i + 1}", page=i + 1, start=a, end=a + len(t), text=t)
    for i, (a, t) in enumerate(
        (EN_DOC.index(head), EN_DOC[EN_DOC.index(head) :].split("\n\n")[0])
        for head in ("Annual leave.", "Remote work.", "Expenses.")
    )
]

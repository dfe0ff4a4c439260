"""Chinese numerals vs digits in the support check (issue 12: "15天" vs a passage's "十五天")."""

from assistant import lexical
from assistant.support import SupportChecker

PASSAGE = "员工在公司连续工作满一年后，每年享有十五天带薪年假。未休完的年假最多可结转五天至下一年度。"


def test_zh_numerals_become_digits():
    assert lexical.numbers("每年享有十五天带薪年假，须在三月三十一日前使用") >= {"15", "3", "31"}
    assert "统一" in lexical.term_set("统一管理")  # no measure word after it: left alone


def test_digit_claim_supported_by_numeral_passage():
    checker = SupportChecker()
    q = "年假有多少天？"
    ok = checker.check("员工每年享有15天带薪年假。", {1: PASSAGE}, q)
    assert ok.supported
    assert checker.covers_question(q, ["员工每年享有15天带薪年假。"])
    assert not checker.check("员工每年享有20天带薪年假。", {1: PASSAGE}, q).supported

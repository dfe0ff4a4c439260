"""``docent eval-answers`` and the refusal causes it measured (issue 12).

The refusal-logic tests drive the real Answerer over HTTP against the scripted
OpenAI-compatible server (tests/vllm_stub.py): what the model says is fixed, so what is tested
is what Docent does with it. Documents are the repository's real samples.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from assistant import answer_eval
from assistant.answer_models import Answer
from assistant.answerer import Answerer
from assistant.llm_client import LLMClient
from assistant.prompts import ANSWER_SYSTEM, ANSWER_SYSTEM_JSON, REFUSAL_EN, answer_schema
from ingest.parse import parse_file
from retrieval.models import Passage
from retrieval.settings import Settings
from tests.conftest import REPO
from tests.vllm_stub import VLLMStub

SAMPLES = REPO / "data" / "samples"
QUESTION = "How many days of paid annual leave do employees get?"


def sample_passage(name: str) -> Passage:
    path = SAMPLES / name
    doc = parse_file(path, 50)
    return Passage(chunk_ids=["c1"], document_id=name, collection="hr", path=str(path), title=doc.title,
                   text=doc.text, start=0, end=len(doc.text), score=1.0)


def structured(*sentences: tuple[str, list[int]], found: bool = True) -> str:
    return json.dumps({"found": found, "answer_sentences": [{"text": t, "citations": c} for t, c in sentences]})


@pytest.fixture
def ask(settings, embedder):
    """Ask through the real Answerer, with the index's e5 model for cross-language support."""
    def run(question: str, passages: list[Passage], *, reply: str = "", json_reply: str | None = None,
            base: Settings | None = None) -> Answer:
        with VLLMStub(reply=reply, json_reply=json_reply, delay_s=0) as stub:
            s = (base or settings).model_copy(update={"llm_base_url": stub.base_url})
            return Answerer(s, LLMClient(s), lambda q: passages, meaning=embedder.embed_queries).answer(question)
    return run


# --- cause 1: a correct English answer from a Chinese policy failed the lexical support check -----
def test_english_answer_citing_the_chinese_policy_is_supported(ask):
    answer = ask(QUESTION, [sample_passage("leave-policy-zh.docx")],
                 json_reply=structured(("Employees get 15 days of paid annual leave per year.", [1])))
    assert answer.mode == "generated", (answer.refusal_stage, answer.sentences)
    assert answer.citations[0].supported
    assert "十五天带薪年假" in answer.citations[0].quote


def test_cross_language_claim_with_a_wrong_figure_is_still_refused(ask):
    answer = ask(QUESTION, [sample_passage("leave-policy-zh.docx")],
                 json_reply=structured(("Employees get 25 days of paid annual leave per year.", [1])))
    assert answer.mode == "refused"
    assert answer.refusal_stage == "support"


def test_cross_language_claim_about_another_document_is_refused(ask):
    answer = ask(QUESTION, [sample_passage("leave-policy-zh.docx")],
                 json_reply=structured(("Business class may be booked for flights of six hours or longer.", [1])))
    assert answer.mode == "refused"


# --- cause 2: the schema let the model say "found" and write nothing ------------------------------
def test_schema_does_not_allow_found_without_a_sentence():
    validator = jsonschema.Draft202012Validator(answer_schema([1, 2]))
    assert not validator.is_valid({"found": True, "answer_sentences": []})
    assert not validator.is_valid({"found": False, "answer_sentences": [{"text": "x", "citations": [1]}]})
    assert validator.is_valid({"found": False, "answer_sentences": []})
    assert validator.is_valid({"found": True, "answer_sentences": [{"text": "x", "citations": [2]}]})
    assert not validator.is_valid({"found": True, "answer_sentences": [{"text": "x", "citations": [3]}]})


# --- the stage that refused is recorded -----------------------------------------------------------
@pytest.mark.parametrize(("json_reply", "stage"), [
    (structured(found=False), "model"),
    (structured(("Staff parking is free for everyone.", [1])), "support"),
])
def test_refusal_names_the_stage(json_reply, stage, ask):
    answer = ask("How many days of sick leave need a certificate?", [sample_passage("travel-policy.docx")],
                 json_reply=json_reply)
    assert answer.mode == "refused" and answer.refusal_stage == stage


def test_inline_refusal_sentence_is_the_model_stage(settings, ask):
    s = settings.model_copy(update={"llm_answer_format": "inline"})
    answer = ask("What is the parking fee?", [sample_passage("travel-policy.docx")], reply=REFUSAL_EN, base=s)
    assert answer.refusal_stage == "model"


# --- several valid answers -------------------------------------------------------------------------
def test_prompts_ask_for_every_case_when_answers_differ_by_case():
    for prompt in (ANSWER_SYSTEM, ANSWER_SYSTEM_JSON):
        assert "one figure per city" in prompt and "never pick one" in prompt


def test_one_figure_of_several_is_not_a_correct_answer():
    item = answer_eval.QuestionItem("m", "What is the daily meal allowance?", ("GBP 60", "USD 85", "CNY 350"),
                                    True, "tune", min_answers=2)
    one = Answer(answer="The meal allowance is GBP 60 [1].", mode="generated")
    two = Answer(answer="It is GBP 60 in London and USD 85 in New York [1].", mode="generated")
    assert not answer_eval.score(item, one).correct
    assert answer_eval.score(item, two).correct


# --- scoring ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("said", "gold", "hit"), [
    ("每年享有十五天带薪年假[1]。", "15天", True),
    ("员工享有１５天年假 [1]。", "十五天", True),
    ("Ｅｍｐｌｏｙｅｅｓ get  ＧＢＰ６０", "GBP 60", True),
    ("the hotel limit is CNY 1,200", "CNY 1200", True),
    ("Employees get 25 days.", "15", False),
])
def test_gold_matching_normalises_scripts_numerals_and_spacing(said, gold, hit):
    assert (answer_eval.gold_hits(said, [gold]) == 1) is hit


def test_citation_validity_flags_marks_outside_the_passages():
    p = sample_passage("travel-policy.docx")
    assert answer_eval.citations_valid(Answer(answer="Economy [1].", mode="generated", passages=[p]))
    assert not answer_eval.citations_valid(Answer(answer="Economy [2].", mode="generated", passages=[p]))


def test_summary_rates():
    def r(answerable, mode, correct, stage=None):
        return answer_eval.QuestionResult("x", "check", answerable, mode, stage, correct, True, True, True, 6,
                                          100.0, 200.0)
    s = answer_eval.summarise([r(True, "generated", True), r(True, "refused", False, "support"),
                               r(False, "refused", False, "model"), r(False, "generated", False)])
    assert s["correct"] == 0.5 and s["false_refusal"] == 0.5 and s["unanswerable_refusal"] == 0.5
    assert s["false_refusal_stages"] == {"support": 1}
    assert s["citation_validity"] == 1.0 and s["ttft_ms_median"] == 100.0


# --- sets and the command --------------------------------------------------------------------------
def test_beir_set_withholds_the_unanswerable_articles(tmp_path):
    from ui.usecases.answer_sets import load_set

    data = tmp_path / "data"
    (data / "qrels").mkdir(parents=True)
    docs = [(f"D{i}", f"第{i}篇", f"这是第{i}篇文章，答案是{i}号。") for i in range(6)]
    (data / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "title": t, "text": x}, ensure_ascii=False) + "\n"
                                               for d, t, x in docs), encoding="utf-8")
    (data / "queries.jsonl").write_text("".join(json.dumps({"_id": f"{d}_Q", "text": f"{t}的答案？", "answers": [x[-3:-1]]},
                                                           ensure_ascii=False) + "\n" for d, t, x in docs), encoding="utf-8")
    (data / "qrels" / "test.tsv").write_text("".join(f"{d}_Q\t{d}\t1\n" for d, _, _ in docs))
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "set.json").write_text(json.dumps({"kind": "beir", "source": str(data), "queries": 2,
                                                 "unanswerable": 2, "distractors": 1, "seed": 1}))
    aset = load_set(folder)
    indexed = {src.path for src, _ in aset.documents}
    una = [i for i in aset.items if not i.answerable]
    assert len(aset.items) == 4 and len(una) == 2 and len(indexed) == 3
    for item in una:
        assert "beir://" + item.id.removesuffix("_Q") not in indexed
    for item in aset.items:
        if item.answerable:
            assert "beir://" + item.id.removesuffix("_Q") in indexed
        assert item.split in ("tune", "check")


def test_eval_answers_command_extractive(tmp_path, monkeypatch, capsys):
    from ui.cli.main import main

    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "set.json").write_text(json.dumps({
        "kind": "files", "documents": [str(SAMPLES / "travel-policy.docx"), str(SAMPLES / "leave-policy-zh.docx")],
        "withheld": [str(SAMPLES / "fake-memo.pdf")]}))
    rows = [{"id": "a1", "question": "年假有多少天？", "answers": ["十五天"], "answerable": True, "split": "tune"},
            {"id": "a2", "question": "Which class is the default for short flights?", "answers": ["economy"],
             "answerable": True, "split": "check"},
            {"id": "u1", "question": "How many laptops were delivered?", "answers": ["200 laptops"],
             "answerable": False, "split": "check"}]
    (folder / "questions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    monkeypatch.setenv("DOCENT_DATA_DIR", str(tmp_path / "docent"))
    monkeypatch.setenv("DOCENT_LOCAL_LLM", "none")
    out = tmp_path / "report.json"
    assert main(["eval-answers", str(folder), "--out", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    summary = report["summary"]["all"]
    assert summary["answerable"] == 2 and summary["unanswerable"] == 1
    assert summary["correct"] == 1.0 and summary["citation_validity"] == 1.0
    by_id = {q["id"]: q for q in report["questions"]}
    assert by_id["u1"]["gold_in_passages"] is False  # the memo was withheld from the index
    assert report["model"]["source"] == "none"
    assert "false-ref" in capsys.readouterr().out


def test_measure_word_after_a_figure_is_a_term():
    from assistant import lexical

    # "年假有多少天" asks about 年假 and 天; the policy's "十五天带薪年假" must offer both.
    assert {"年假", "天"} <= lexical.term_set("每年享有十五天带薪年假。")


# --- cause 3: a "no" answer was only question words to the support check ---------------------------
def test_negative_answer_to_a_yes_no_question_is_supported_and_its_opposite_is_not(ask):
    passages = [sample_passage("travel-policy.docx")]
    no = ask("Is alcohol reimbursed?", passages, json_reply=structured(("Alcohol is not reimbursed.", [1])))
    assert no.mode == "generated", (no.refusal_stage, no.sentences)
    yes = ask("Is alcohol reimbursed?", passages, json_reply=structured(("Alcohol is reimbursed.", [1])))
    assert yes.mode == "refused"

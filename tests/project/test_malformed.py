"""Every malformed input gives a clear error at file:line:column with the key path (never a traceback).

Each case edits the valid base project or pipeline (conftest.py) and asserts the file, position,
key path and message of the diagnostic it must produce.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from claractl.project import ProjectError, load_project

from .conftest import BASE_PIPELINE, BASE_PROJECT


@dataclass
class Case:
    id: str
    file: str                 # "clara.yaml" or "p.yaml"
    line: int
    column: int
    key_path: str
    message: str              # substring of the message
    project: str | bytes = BASE_PROJECT
    pipeline: str | bytes | None = BASE_PIPELINE
    model: bool = True


def proj(old: str, new: str) -> str:
    assert old in BASE_PROJECT, old
    return BASE_PROJECT.replace(old, new, 1)


def pipe(old: str, new: str) -> str:
    assert old in BASE_PIPELINE, old
    return BASE_PIPELINE.replace(old, new, 1)


TLS_SERVICE = """services:
  dicom-adapter:
    tls: {port: 2762, certificate: certs/x.pem, private-key: certs/x.key}
"""

BILLION_LAUGHS = "apiVersion: claractl/v1\n" + "\n".join(
    [f"a0: &a0 [{', '.join(['lol'] * 10)}]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
) + "\n"

CASES = [
    # --- YAML level --------------------------------------------------------------------------
    Case("yaml-syntax", "clara.yaml", 4, 7, "", "YAML syntax error", project=proj("name: test", "name: [test")),
    Case("yaml-bad-indent", "clara.yaml", 4, 4, "", "YAML syntax error", project=proj("name: test", "name: test\n  x: 1")),
    Case("not-a-mapping-list", "clara.yaml", 1, 1, "", "the document is a list; expected a mapping",
         project="- a\n- b\n"),
    Case("not-a-mapping-scalar", "clara.yaml", 1, 1, "", "the document is a single value", project="hello\n"),
    Case("empty-file", "clara.yaml", 1, 1, "", "file is empty", project=""),
    Case("only-comments", "clara.yaml", 1, 1, "", "file is empty", project="# nothing here\n"),
    Case("binary-junk", "clara.yaml", 1, 1, "", "not a text file", project=b"\x7fELF\x02\x01\x00\x00junk"),
    Case("not-utf8", "clara.yaml", 2, 1, "", "not UTF-8 text", project=b"apiVersion: claractl/v1\nname: \xff\xfe\n"),
    Case("control-character", "clara.yaml", 3, 7, "", "character #x0007 is not allowed",
         project=proj("name: test", "name: \x07test")),
    Case("duplicate-key", "clara.yaml", 4, 1, "name", "duplicate key 'name' (first defined at line 3)",
         project=proj("name: test\n", "name: test\nname: again\n")),
    Case("two-documents", "clara.yaml", 17, 1, "", "expected one YAML document", project=BASE_PROJECT + "---\na: 1\n"),
    Case("alias-bomb", "clara.yaml", 6, 1, "a4", "alias bomb", project=BILLION_LAUGHS),
    Case("recursive-alias", "clara.yaml", 3, 7, "name[0]", "recursive alias", project=proj("name: test", "name: &x [*x]")),
    Case("unsupported-tag", "clara.yaml", 3, 7, "name", "unsupported YAML tag", project=proj("name: test", "name: !!binary dGVzdA==")),
    # --- project schema ----------------------------------------------------------------------
    Case("unknown-top-key", "clara.yaml", 4, 1, "pipelnes", "unknown key 'pipelnes'; did you mean 'pipelines'?",
         project=proj("models:", "pipelnes: []\nmodels:")),
    Case("unknown-nested-key", "clara.yaml", 6, 5, "models[0].pth", "did you mean 'path'?",
         project=proj("    path: models/m", "    pth: models/m")),
    Case("missing-required", "clara.yaml", 5, 5, "models[0]", "missing required key 'path'",
         project=proj("    path: models/m\n", "")),
    Case("missing-name", "clara.yaml", 1, 1, "", "missing required key 'name'", project=proj("name: test\n", "")),
    Case("wrong-kind", "clara.yaml", 2, 7, "kind", "expected kind: Project", project=proj("kind: Project", "kind: Projekt")),
    Case("wrong-type-list", "clara.yaml", 12, 16, "ae-titles[0].pipelines", "expected a list, got a string",
         project=proj("pipelines: [p]", "pipelines: p")),
    Case("wrong-type-port", "clara.yaml", 16, 57, "destinations[0].port", "expected an integer, got a string",
         project=proj("port: 4242", "port: high")),
    Case("port-zero", "clara.yaml", 16, 57, "destinations[0].port", "0 is out of range; expected 1 to 65535",
         project=proj("port: 4242", "port: 0")),
    Case("port-70000", "clara.yaml", 16, 57, "destinations[0].port", "70000 is out of range",
         project=proj("port: 4242", "port: 70000")),
    Case("ae-title-17-chars", "clara.yaml", 11, 15, "ae-titles[0].ae-title", "17 characters long; at most 16",
         project=proj("ae-title: TEST", "ae-title: ABCDEFGHIJKLMNOPQ")),
    Case("ae-title-backslash", "clara.yaml", 11, 15, "ae-titles[0].ae-title", "no backslash",
         project=proj("ae-title: TEST", 'ae-title: "TE\\\\ST"')),
    Case("ae-title-blank", "clara.yaml", 14, 27, "sources[0].ae-title", "not only spaces",
         project=proj("ae-title: SRC", 'ae-title: "   "')),
    Case("bad-group-by", "clara.yaml", 13, 15, "ae-titles[0].group-by", "GGGG,EEEE",
         project=proj("    pipelines: [p]\n", "    pipelines: [p]\n    group-by: 0020000D\n")),
    Case("bad-priority", "clara.yaml", 13, 15, "ae-titles[0].priority", "did you mean 'higher'?",
         project=proj("    pipelines: [p]\n", "    pipelines: [p]\n    priority: highr\n")),
    Case("bad-target-type", "clara.yaml", 4, 16, "target.type", "is not one of: local, kubernetes",
         project=proj("models:", "target: {type: docker}\nmodels:")),
    Case("bad-database", "clara.yaml", 4, 33, "services.platform.database", "postgresql://",
         project=proj("models:", "services: {platform: {database: mysql://x}}\nmodels:")),
    Case("bad-name-chars", "clara.yaml", 8, 11, "pipelines[0].name", "names are 1-255 characters",
         project=proj("  - name: p\n", "  - name: p q\n")),
    # --- project semantics -------------------------------------------------------------------
    Case("duplicate-names-case", "clara.yaml", 17, 12, "destinations[1].name", "names are case-insensitive",
         project=BASE_PROJECT + "  - {name: PACS, ae-title: OTHER, host: 10.0.0.1, port: 104}\n"),
    Case("ae-title-unknown-pipeline", "clara.yaml", 12, 17, "ae-titles[0].pipelines[0]", "no pipeline named 'q'",
         project=proj("pipelines: [p]", "pipelines: [q]")),
    Case("pipeline-file-missing", "clara.yaml", 9, 11, "pipelines[0].file", "pipeline file pipelines/p.yaml not found",
         pipeline=None),
    Case("model-dir-missing", "clara.yaml", 6, 11, "models[0].path", "model directory models/m not found", model=False),
    Case("export-unknown-destination", "clara.yaml", 10, 47, "pipelines[0].export[0].destinations[0]",
         "no destination named 'pac'", project=proj("    file: pipelines/p.yaml\n",
                                                    "    file: pipelines/p.yaml\n    export: [{agent: ClaraSCU, destinations: [pac]}]\n")),
    Case("export-bad-agent", "clara.yaml", 10, 22, "pipelines[0].export[0].agent", "ClaraSCU, renderserver",
         project=proj("    file: pipelines/p.yaml\n", "    file: pipelines/p.yaml\n    export: [{agent: scu}]\n")),
    Case("port-conflict", "clara.yaml", 4, 27, "services.render.port", "port 8765 is already used by services.platform.api-port",
         project=proj("models:", "services: {render: {port: 8765}}\nmodels:")),
    Case("env-unset", "clara.yaml", 4, 33, "services.platform.database", "environment variable CLARA_TEST_UNSET_VAR is not set",
         project=proj("models:", "services: {platform: {database: 'postgresql://u:${env:CLARA_TEST_UNSET_VAR}@db/clara'}}\nmodels:")),
    # --- pipeline file -----------------------------------------------------------------------
    Case("pipeline-yaml-error", "p.yaml", 3, 10, "", "YAML syntax error", pipeline=pipe("name: p", "name: {p")),
    Case("pipeline-empty", "p.yaml", 1, 1, "", "file is empty", pipeline=""),
    Case("pipeline-unknown-key", "p.yaml", 5, 3, "operators[0].containr", "did you mean 'container'?",
         pipeline=pipe("  container: {image: claractl/dicom-reader", "  containr: {image: claractl/dicom-reader")),
    Case("pipeline-bad-api-version", "p.yaml", 1, 14, "api-version", "0.3.0 to 0.7.0", pipeline=pipe("0.6.0", "0.9.0")),
    Case("pipeline-relative-path", "p.yaml", 6, 18, "operators[0].input[0].path", "paths are absolute",
         pipeline=pipe("[{path: /input}]", "[{path: input}]")),
    Case("from-missing-operator", "p.yaml", 10, 18, "operators[1].input[0].from", "no operator named 'readr'; did you mean 'reader'?",
         pipeline=pipe("from: reader", "from: readr")),
    Case("from-missing-output", "p.yaml", 10, 32, "operators[1].input[0].name", "has no output named 'labels'",
         pipeline=pipe("from: reader,", "from: reader, name: labels,")),
    Case("name-without-from", "p.yaml", 6, 12, "operators[0].input[0].name", "`name` needs `from`",   # < 0.5.0
         pipeline=pipe("[{path: /input}]", "[{name: x, path: /input}]").replace("0.6.0", "0.4.0")),
    Case("duplicate-operator-case", "p.yaml", 8, 9, "operators[1].name", "names are case-insensitive",
         pipeline=pipe("- name: infer", "- name: READER").replace("from: reader", "from: x")),
    Case("cycle", "p.yaml", 10, 18, "operators[1].input[0].from", "operators form a cycle: reader → infer → reader",
         pipeline=pipe("  input: [{path: /input}]", "  input: [{from: infer, path: /input}]")),
    Case("unnamed-of-two-outputs", "p.yaml", 11, 12, "operators[1].output[0]", "output needs a `name`",
         pipeline=pipe("  output: [{path: /output}]\n  models", "  output: [{path: /output}, {name: b, path: /b}]\n  models")),
    Case("models-before-0.6", "p.yaml", 12, 3, "operators[1].models", "`models` needs api-version 0.6.0",
         pipeline=pipe("0.6.0", "0.5.0")),
    Case("services-after-0.6", "p.yaml", 12, 3, "operators[1].services", "`services` is legacy",
         pipeline=pipe("0.6.0", "0.7.0").replace("models: [{name: m}]", "services: [{name: trtis, container: {image: t}}]")),
    Case("undeclared-placeholder", "p.yaml", 5, 67, "operators[0].container.command[2]", "placeholder ${{ where }} is not declared",
         pipeline=pipe("-m, x]", "-m, '${{ where }}']")),
    Case("operator-unknown-model", "p.yaml", 12, 19, "operators[1].models[0].name", "no model named 'mm'",
         pipeline=pipe("{name: m}", "{name: mm}")),
    Case("wrong-type-requests", "p.yaml", 13, 19, "operators[1].requests.cpu", "expected a number, got a string",
         pipeline=BASE_PIPELINE.rstrip("\n") + "\n  requests: {cpu: lots}\n"),
    Case("tls-file-missing", "clara.yaml", 19, 36, "services.dicom-adapter.tls.certificate",
         "file certs/x.pem not found", project=BASE_PROJECT + TLS_SERVICE),
    Case("tls-port-without-key", "clara.yaml", 19, 17, "services.dicom-adapter.tls.port",
         "a TLS port needs tls.private-key", project=BASE_PROJECT + TLS_SERVICE.replace(", private-key: certs/x.key", "")),
    Case("tls-port-shared", "clara.yaml", 19, 17, "services.dicom-adapter.tls.port",
         "port 11112 is already used by services.dicom-adapter.port",
         project=BASE_PROJECT + TLS_SERVICE.replace("2762", "11112")),
    Case("tls-verify-without-ca", "clara.yaml", 19, 91, "services.dicom-adapter.tls.verify-clients",
         "verify-clients needs tls.ca-certificates", project=BASE_PROJECT + TLS_SERVICE.replace("}", ", verify-clients: true}")),
    Case("destination-tls-not-boolean", "clara.yaml", 16, 68, "destinations[0].tls", "expected true or false",
         project=proj("port: 4242}", "port: 4242, tls: yes-please}")),
    Case("register-results-unknown-destination", "p.yaml", 5, 104, "operators[0].container.command[6]",
         "no destination named 'nowhere'",
         pipeline=pipe("-m, x]", "-m, register, --agent, ClaraSCU, --data, '[\"nowhere\"]']")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_input_is_reported_at_its_position(case: Case, make_project, monkeypatch) -> None:
    monkeypatch.delenv("CLARA_TEST_UNSET_VAR", raising=False)
    path = make_project(case.project, case.pipeline, model=case.model)
    with pytest.raises(ProjectError) as caught:
        load_project(path)
    found = [(d.location.file.rsplit("/", 1)[-1], d.location.line, d.location.column, d.key_path, d.message)
             for d in caught.value.diagnostics]
    matching = [f for f in found if f[0] == case.file and case.message in f[4]]
    assert matching, f"no diagnostic containing {case.message!r} in {case.file}; got {found}"
    assert matching[0][1:4] == (case.line, case.column, case.key_path), found


def test_at_least_forty_malformed_cases() -> None:
    assert len(CASES) >= 40

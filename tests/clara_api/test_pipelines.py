"""Pipelines through NVIDIA's PipelinesClient: create from a PDL file, list, details (definition
and DAG), update, metadata, remove; the same pipelines through the HTTP API; errors as the client
raises them (the response header's message), never a stack trace."""

from __future__ import annotations


from tests.clara_api.support import ct_pipeline

BAD_PDL = "api-version: 0.4.0\nname: broken\noperators:\n- name: a\n  container: {image: x}\n  input: [{from: nowhere, path: /in}]\n"


def test_create_list_details_update_remove(clara, tmp_path):
    path = ct_pipeline(tmp_path, "clara-pipe")
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text(path.read_text().replace("name: clara-pipe", "name: clara-pipe-2"))
    result = clara.run('''
        from pathlib import Path
        definition = [pipeline_types.PipelineDefinition(name="{path}", content=Path("{path}").read_text())]
        pid = pipelines.create_pipeline(definition=definition, metadata={{"team": "radiology"}})
        again = pipelines.create_pipeline(definition=definition)         # same file again: same pipeline
        listed = {{p.pipeline_id.value: (p.name, dict(p.metadata)) for p in pipelines.list_pipelines()}}
        details = pipelines.pipeline_details(pipeline_id=pid)
        dag = pipelines._stub.Details(__import__("nvidia_clara.grpc.pipelines_pb2", fromlist=["x"])
                                      .PipelinesDetailsRequest(pipeline_id=pid.to_grpc_value()))
        dag = [(n.name, [m.name for m in n.next]) for r in dag for n in r.dag]
        added = dict(pipelines.add_metadata(pipeline_id=pid, metadata={{"site": "north"}}))
        duplicate = error(pipelines.add_metadata, pipeline_id=pid, metadata={{"TEAM": "x"}})
        left = dict(pipelines.remove_metadata(pipeline_id=pid, keys=["team"]))
        pipelines.update_pipeline(pipeline_id=pid, definition=[pipeline_types.PipelineDefinition(
            name="{renamed}", content=Path("{renamed}").read_text())])
        renamed = pipelines.pipeline_details(pipeline_id=pid).name
        pipelines.remove_pipeline(pipeline_id=pid)
        out(dict(pid=pid.value, again=again.value, listed=listed, name=details.name, content=details.definition[0].content.content,
                 dag=dag, added=added, duplicate=duplicate, left=left, renamed=renamed,
                 after=[p.pipeline_id.value for p in pipelines.list_pipelines()],
                 gone=error(pipelines.pipeline_details, pipeline_id=pid)))
        ''', path=path, renamed=renamed)
    pid = result["pid"]
    assert len(pid) == 32 and result["again"] == pid
    assert result["listed"][pid] == ["clara-pipe", {"team": "radiology"}]
    assert result["name"] == "clara-pipe" and result["content"] == path.read_text()
    assert result["dag"] == [["dicom-reader", ["summary"]]]
    assert result["added"] == {"team": "radiology", "site": "north"}
    assert "metadata key 'TEAM' already exists (as 'team')" in result["duplicate"]
    assert result["left"] == {"site": "north"}
    assert result["renamed"] == "clara-pipe-2"
    assert pid not in result["after"]
    assert result["gone"] == f"Exception: pipeline '{pid}' not found"


def test_the_http_api_sees_the_same_pipeline_by_name_and_id(clara, tmp_path):
    path = ct_pipeline(tmp_path, "both-doors")
    pid = clara.run('''
        from pathlib import Path
        pid = pipelines.create_pipeline(definition=[pipeline_types.PipelineDefinition(
            name="p.yaml", content=Path("{path}").read_text())])
        out(pid.value)
        ''', path=path)
    rest = clara.rest.get_pipeline("both-doors")
    assert rest["clara_id"] == pid and rest["id"].replace("-", "") == pid
    assert rest["owner"] is None                  # made by hand: plan/apply never deletes it
    clara.rest.delete_pipeline("both-doors")
    assert clara.run('out([p.name for p in pipelines.list_pipelines()])').count("both-doors") == 0


def test_errors_arrive_as_the_client_raises_them(clara, tmp_path):
    first = ct_pipeline(tmp_path, "taken")
    other = tmp_path / "other.yaml"
    other.write_text(first.read_text().replace("default-label", "other-label"))
    result = clara.run('''
        from pathlib import Path
        def definition(path):
            return [pipeline_types.PipelineDefinition(name=path, content=Path(path).read_text())]
        pid = pipelines.create_pipeline(definition=definition("{first}"))
        out(dict(bad=error(pipelines.create_pipeline, definition=[pipeline_types.PipelineDefinition(
                     name="bad.yaml", content={bad!r})]),
                 taken=error(pipelines.create_pipeline, definition=definition("{other}")),
                 malformed=error(pipelines.pipeline_details, pipeline_id=pipeline_types.PipelineId("not-an-id")),
                 code=pipelines._stub.Remove(__import__("nvidia_clara.grpc.pipelines_pb2", fromlist=["x"])
                     .PipelinesRemoveRequest(pipeline_id=pipeline_types.PipelineId("0" * 32).to_grpc_value())).header.code,
                 pid=pid.value))
        ''', first=first, other=other, bad=BAD_PDL)
    assert result["bad"].startswith("Exception: invalid pipeline definition:")
    assert "bad.yaml:6:" in result["bad"] and "no operator named 'nowhere'" in result["bad"]
    assert "Traceback" not in result["bad"]
    assert result["taken"] == (f"Exception: a pipeline named 'taken' already exists (id {result['pid']}) with a "
                               "different definition; claractl names pipelines uniquely: update that one "
                               "(Pipelines.Update) or remove it first")
    assert result["malformed"] == "Exception: invalid pipeline id 'not-an-id': expected a UUID (32 hex digits)"
    assert result["code"] == -0x1001                 # Clara's "Missing/Invalid Pipeline"

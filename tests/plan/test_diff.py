from claractl.plan.diff import ABSENT, field_diffs, leaves
from claractl.project.model import Secret


def test_nested_paths_use_dots_and_list_indexes():
    before = {"operators": [{"container": {"tag": "1.0"}}, {"container": {"tag": "1.0"}}]}
    after = {"operators": [{"container": {"tag": "1.0"}}, {"container": {"tag": "1.1"}}]}
    [d] = field_diffs(before, after)
    assert (d.path, d.before, d.after, d.kind) == ("operators[1].container.tag", "1.0", "1.1", "change")


def test_added_and_removed_keys_and_list_items():
    diffs = {d.path: d for d in field_diffs({"a": 1, "l": [1, 2]}, {"b": 2, "l": [1]})}
    assert diffs["a"].kind == "remove" and diffs["a"].after is ABSENT
    assert diffs["b"].kind == "add" and diffs["b"].before is ABSENT
    assert diffs["l[1]"].kind == "remove"
    assert set(diffs) == {"a", "b", "l[1]"}


def test_int_and_float_of_same_value_are_equal_but_bool_is_not_int():
    assert field_diffs({"timeout": 5}, {"timeout": 5.0}) == []
    assert len(field_diffs({"x": 1}, {"x": True})) == 1


def test_secret_compares_by_value_and_is_marked_sensitive():
    assert field_diffs({"database": "pg://a"}, {"database": Secret("DB", "pg://a")}) == []
    [d] = field_diffs({"database": "pg://a"}, {"database": Secret("DB", "pg://b")})
    assert d.sensitive


def test_keys_named_like_secrets_are_sensitive():
    [d] = field_diffs({"api-token": "x"}, {"api-token": "y"})
    assert d.sensitive
    [d] = field_diffs({"port": 1}, {"port": 2})
    assert not d.sensitive


def test_leaves_of_a_new_object():
    paths = [d.path for d in leaves({"a": {"b": 1, "c": [1, {"d": 2}]}, "e": []})]
    assert paths == ["a.b", "a.c[0]", "a.c[1].d", "e"]

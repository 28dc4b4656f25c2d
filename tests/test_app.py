"""The assembled page: its structure, as the browser's tab bar relies on it."""

import app


def test_every_child_of_the_tabs_is_a_tab():
    """Gradio's tab bar counts the children of gr.Tabs: a component created between two
    tabs (it happened: a gr.State made after the Playground's `with gr.Tab`) made a later
    tab's button vanish and another show twice once visited."""
    config = app.build_app().config
    types = {c["id"]: (c["type"], c.get("props", {}).get("label")) for c in config["components"]}

    def tabs_children(node):
        if types.get(node["id"], ("",))[0] == "tabs":
            yield [types[c["id"]] for c in node.get("children", [])]
        for child in node.get("children", []):
            yield from tabs_children(child)

    (children,) = list(tabs_children(config["layout"]))
    assert children == [
        ("tabitem", name) for name in ("Data", "Train", "Playground", "Evaluate", "Export")
    ]

"""The category tree: full paths, moving a subtree, refusing cycles, and filtering by descendants."""

from __future__ import annotations

from tests.catalog.conftest import API, variant


def test_paths_follow_renames_and_subtree_moves(client, headers, create_category):
    home = create_category("Home")
    kitchen = create_category("Kitchen", home["id"])
    knives = create_category("Knives", kitchen["id"])
    garden = create_category("Garden")
    assert knives["path"] == "Home > Kitchen > Knives" and knives["parentId"] == kitchen["id"]

    moved = client.patch(f"{API}/categories/{kitchen['id']}", json={"parentId": garden["id"]}, headers=headers["staff"])
    assert moved.status_code == 200 and moved.get_json()["path"] == "Garden > Kitchen"
    assert client.get(f"{API}/categories/{knives['id']}").get_json()["path"] == "Garden > Kitchen > Knives"

    client.patch(f"{API}/categories/{garden['id']}", json={"name": "Outdoor"}, headers=headers["staff"])
    paths = [c["path"] for c in client.get(f"{API}/categories").get_json()["items"]]
    assert paths == ["Home", "Outdoor", "Outdoor > Kitchen", "Outdoor > Kitchen > Knives"]

    to_root = client.patch(f"{API}/categories/{kitchen['id']}", json={"parentId": None}, headers=headers["staff"])
    assert to_root.get_json()["path"] == "Kitchen"
    assert client.get(f"{API}/categories/{knives['id']}").get_json()["path"] == "Kitchen > Knives"


def test_a_category_cannot_move_under_itself_or_a_descendant(client, headers, create_category):
    home = create_category("Home")
    kitchen = create_category("Kitchen", home["id"])
    knives = create_category("Knives", kitchen["id"])
    for target in (home, kitchen, knives):
        response = client.patch(f"{API}/categories/{home['id']}", json={"parentId": target["id"]},
                                headers=headers["staff"])
        assert response.status_code == 409 and "parentId" in response.get_json()["errors"]
    assert client.get(f"{API}/categories/{knives['id']}").get_json()["path"] == "Home > Kitchen > Knives"


def test_names_are_unique_under_a_parent_and_deleting_needs_no_children(client, headers, create_category):
    home = create_category("Home")
    create_category("Kitchen", home["id"])
    twin = client.post(f"{API}/categories", json={"name": "Kitchen", "parentId": home["id"]}, headers=headers["admin"])
    assert twin.status_code == 409 and "name" in twin.get_json()["errors"]
    assert client.post(f"{API}/categories", json={"name": "Kitchen"}, headers=headers["admin"]).status_code == 201
    bad = client.post(f"{API}/categories", json={"name": "A > B"}, headers=headers["admin"])
    assert bad.status_code == 422 and "name" in bad.get_json()["errors"]["json"]
    assert client.delete(f"{API}/categories/{home['id']}", headers=headers["admin"]).status_code == 409


def test_deleting_a_category_keeps_its_products(client, headers, create_category, create_product):
    mugs = create_category("Mugs")
    product = create_product("Mug", categoryId=mugs["id"])
    assert client.delete(f"{API}/categories/{mugs['id']}", headers=headers["admin"]).status_code == 204
    assert client.get(f"{API}/products/{product['id']}").get_json()["categoryId"] is None


def test_listing_by_category_includes_descendants(client, create_category, create_product):
    home = create_category("Home")
    kitchen = create_category("Kitchen", home["id"])
    garden = create_category("Garden")
    create_product("Lamp", categoryId=home["id"], variants=[variant("L")])
    create_product("Pan", categoryId=kitchen["id"], variants=[variant("P")])
    create_product("Hose", categoryId=garden["id"], variants=[variant("H")])

    def names(category):
        return sorted(p["name"] for p in client.get(f"{API}/products?category={category}").get_json()["items"])

    assert names(home["id"]) == ["Lamp", "Pan"]
    assert names(kitchen["id"]) == ["Pan"]
    assert names(garden["id"]) == ["Hose"]

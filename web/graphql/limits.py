"""Depth and cost limits, checked while the query is validated (before any resolver runs).

Cost: every object costs 1 (its scalar fields come with it), times how many
of it can come back: a list counts its `first` argument (or an assumed size),
and nested lists multiply. `products(first: 20) { edges { node { variants
{ sku } } } }` costs 20 × (1 + 1 × (1 + 10 × 1)) = 240.
"""

from __future__ import annotations

from graphql import (FieldNode, FragmentSpreadNode, GraphQLError, InlineFragmentNode, IntValueNode,
                     OperationDefinitionNode, ValidationRule)

# How many items a list field is assumed to return when it has no `first` argument.
LIST_SIZES = {"variants": 10, "images": 10, "items": 10, "events": 20, "children": 20, "categories": 50,
              "edges": 1, "nodes": 1}
PAGED_DEFAULT = 20  # connections without `first`
MAX_FIRST = 100


def limits_rule(max_depth: int, max_cost: int) -> type[ValidationRule]:
    """A validation rule refusing operations deeper than `max_depth` or costlier than `max_cost`."""

    class Limits(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args):
            depth, cost = self._measure(node.selection_set, 0, set())
            name = node.name.value if node.name else "anonymous"
            if depth > max_depth:
                self.report_error(GraphQLError(
                    f"operation {name} is {depth} levels deep; at most {max_depth} are allowed", node,
                    extensions={"code": "QUERY_TOO_DEEP", "depth": depth, "maxDepth": max_depth}))
            elif cost > max_cost:
                self.report_error(GraphQLError(
                    f"operation {name} costs {cost}; at most {max_cost} is allowed (ask for fewer items)", node,
                    extensions={"code": "QUERY_TOO_COSTLY", "cost": cost, "maxCost": max_cost}))

        def _measure(self, selection_set, depth: int, seen: set) -> tuple[int, int]:
            """The deepest level below and the cost of `selection_set`."""
            if selection_set is None:
                return depth, 0
            deepest, cost = depth, 0
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    if selection.name.value.startswith("__"):
                        continue
                    below, inner = self._measure(selection.selection_set, depth + 1, seen)
                    deepest = max(deepest, below)
                    if selection.selection_set is not None:  # scalars come with their object: free
                        cost += self._count(selection) * (1 + inner)
                elif isinstance(selection, InlineFragmentNode):
                    below, inner = self._measure(selection.selection_set, depth, seen)
                    deepest, cost = max(deepest, below), cost + inner
                elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                    fragment = self.context.get_fragment(selection.name.value)
                    if fragment is not None:
                        below, inner = self._measure(fragment.selection_set, depth, seen | {selection.name.value})
                        deepest, cost = max(deepest, below), cost + inner
            return deepest, cost

        @staticmethod
        def _count(field: FieldNode) -> int:
            for argument in field.arguments or ():
                if argument.name.value == "first":
                    value = argument.value
                    if isinstance(value, IntValueNode):
                        return max(1, int(value.value))
                    # Validation runs before variables are known: assume the largest page.
                    return MAX_FIRST
            if field.name.value in LIST_SIZES:
                return LIST_SIZES[field.name.value]
            return PAGED_DEFAULT if field.name.value in PAGED else 1

    return Limits


# Root connections: without `first` they return a page of PAGED_DEFAULT.
PAGED = {"products", "orders", "importJobs", "errors"}

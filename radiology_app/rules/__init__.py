"""Validated clinical rules as pure functions: Lung-RADS v2022, Fleischner 2017, Brock, Mayo, growth."""

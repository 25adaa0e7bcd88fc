"""Pages that only read artifacts: the run report and the page of `quality compare`. This
package may not import the modules that compute (enforced by import-linter)."""

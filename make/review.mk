# The review app: `make review` serves the latest build at http://127.0.0.1:8809 (REVIEWER=name, REVIEW_ARGS for
# --host/--token/--blind-only); `make bench-review` times it on a 100,000-record build.

REVIEWER ?=
REVIEW_ARGS ?=

.PHONY: review bench-review review-screenshot

$(VENV)/.installed-review: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[review]'
	touch $@ $(VENV)/.installed-base

review: $(VENV)/.installed-review
	@test -d datasets/build/$(RELEASE_NAME) || $(CLI) build
	$(CLI) review $(if $(REVIEWER),--reviewer $(REVIEWER)) $(REVIEW_ARGS)

bench-review: $(VENV)/.installed-review
	$(BIN)/python bench/bench_review.py

# The app as a reviewer sees it (needs chromium): the screenshots in docs/ that the README shows.
review-screenshot: $(VENV)/.installed-review
	@test -d datasets/build/$(RELEASE_NAME) || $(CLI) build
	$(BIN)/python docs/review_screenshots.py

# Releases: `make release VERSION=v1.0.0` builds, validates, renders the card and publishes; `make pull VERSION=v1.0.0`
# fetches one. Local registry by default (ANYTASKTUNE_REGISTRY, default <data folder>/registry); the Hub with REPO=org/name
# (or ANYTASKTUNE_HUB_REPO) and HF_TOKEN; HF_ENDPOINT picks another Hub-compatible server.

.PHONY: release pull card serve-registry card-screenshot

REPO ?=
DEST ?=
HOST ?= 127.0.0.1
PORT ?= 8808
RELEASE_NAME ?= anytasktune
_repo_flag = $(if $(REPO),--repo $(REPO))

release: $(VENV)/.installed-base
	@test -n "$(VERSION)" || { echo "usage: make release VERSION=vX.Y.Z [REPO=org/name]" >&2; exit 2; }
	$(CLI) validate
	$(CLI) build --name $(RELEASE_NAME)
	$(CLI) release --version $(VERSION) --name $(RELEASE_NAME) $(_repo_flag)

pull: $(VENV)/.installed-base
	@test -n "$(VERSION)" || { echo "usage: make pull VERSION=vX.Y.Z [REPO=org/name] [DEST=folder]" >&2; exit 2; }
	$(CLI) pull --version $(VERSION) --name $(RELEASE_NAME) $(_repo_flag) $(if $(DEST),--dest $(DEST))

card: $(VENV)/.installed-base
	$(CLI) card --name $(RELEASE_NAME)

serve-registry: $(VENV)/.installed-base
	$(CLI) serve --host $(HOST) --port $(PORT)

# The card as a reader sees it, at 1280 px and on a phone (needs chromium): the screenshots in docs/.
CARD_PAGE = datasets/build/.card-anytasktune/card.html
card-screenshot: card
	chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1300 \
	  --screenshot=$(CURDIR)/docs/card-1280.png file://$(CURDIR)/$(CARD_PAGE)
	chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=390,1300 \
	  --screenshot=$(CURDIR)/docs/card-390.png file://$(CURDIR)/$(CARD_PAGE)

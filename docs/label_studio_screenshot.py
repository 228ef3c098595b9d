"""How docs/label_studio.png was taken: a headless Chromium logged into a local Label Studio server, on the Data
Manager tab of an active-learning project (round 1's tasks, sorted by the proxy's prediction score, lowest first).

    pip install playwright   # in any environment; the browser is the system's: apt-get install chromium
    python docs/label_studio_screenshot.py URL PROJECT TAB EMAIL PASSWORD docs/label_studio.png

The run was `svp-hf active-learn --dataset ../shared/data/ag_news --split "train[:3000]" --proxy tfidf --strategy
margin --initial 100 --budgets 200,300 --batch-size 100 --oracle label-studio --label-studio-url URL --output-dir
ag_news_al`, round 0 annotated, rerun; the tab (a Data Manager view filtered to svp_round 1, ordered by
tasks:predictions_score) was made with POST /api/dm/views.
"""

import sys

from playwright.sync_api import sync_playwright


def main(url, project, tab, email, password, out):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 760})
        page.goto(f"{url}/user/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        page.goto(f"{url}/projects/{project}/data?tab={tab}")
        page.wait_for_timeout(8000)
        page.screenshot(path=out)
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:7])

"""Drives the status page's forms in Debian's Chromium with Playwright, one step per call,
signed in with HTTP Basic credentials; prints what the browser saw as JSON.

    console_actions.py STEP BASE_URL USER PASSWORD [ARG]

Steps: silence (project ARG), page (the page's counts, silences and audit rows), end (the
first silence in force), retry (every dead alert of channel ARG), test (a test alert to
channel ARG), attack (a form carrying a real token, posted from a page on another origin).
"""

import http.server
import json
import sys
import threading

from playwright.sync_api import sync_playwright


def answer(page):
    return {"title": page.inner_text("h1"), "what": page.inner_text("#what")}


def main():
    step, base, user, password = sys.argv[1:5]
    arg = sys.argv[5] if len(sys.argv) > 5 else ""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        context = browser.new_context(http_credentials={"username": user, "password": password})
        page = context.new_page()
        page.goto(base + "/")
        if step == "silence":
            form = 'form[action="actions/silence"]'
            page.select_option(f"{form} select[name=scope]", "project")
            page.fill(f"{form} input[name=target]", arg)
            page.fill(f"{form} input[name=for]", "2h")
            page.fill(f"{form} input[name=reason]", "re-import <b>OPS-7</b>")
            page.click(f"{form} button")
            result = answer(page)
        elif step == "page":
            rows = lambda selector: [
                [cell.inner_text() for cell in row.query_selector_all("td")]
                for row in page.query_selector_all(selector)
            ]
            result = {
                "silenced": int(page.inner_text("#alerts-silenced")),
                "dead": int(page.inner_text("#alerts-dead")),
                "silences": rows("#silences tr:has(td)"),
                "audit": rows("#audit tr:has(td)"),
                "forms": len(page.query_selector_all("form")),
            }
        elif step == "end":
            page.click('form[action="actions/silence/end"] button')
            result = answer(page)
        elif step == "retry":
            form = 'form[action="actions/retry"]:has(select)'
            page.select_option(f"{form} select[name=channel]", arg)
            page.click(f"{form} button")
            result = answer(page)
        elif step == "test":
            form = 'form[action="actions/test-alert"]'
            page.select_option(f"{form} select[name=channel]", arg)
            page.click(f"{form} button")
            result = answer(page)
        elif step == "attack":
            token = page.get_attribute('form[action="actions/silence"] input[name=csrf]', "value")
            evil = f"""<!DOCTYPE html><html><body>
<form method="post" action="{base}/actions/silence">
<input type="hidden" name="csrf" value="{token}"><input type="hidden" name="scope" value="project">
<input type="hidden" name="target" value="{arg}"><input type="hidden" name="for" value="90d">
<input type="hidden" name="reason" value="mute everything"><button>win a prize</button></form>
</body></html>""".encode()

            class Evil(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    self.send_response(200)
                    self.send_header("content-type", "text/html")
                    self.end_headers()
                    self.wfile.write(evil)

                def log_message(self, *args):
                    pass

            server = http.server.HTTPServer(("127.0.0.1", 0), Evil)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            other = context.new_page()
            other.goto(f"http://127.0.0.1:{server.server_port}/")
            other.click("button")
            result = {"status_text": other.inner_text("body")}
            server.shutdown()
        else:
            raise SystemExit(f"unknown step {step}")
        browser.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()

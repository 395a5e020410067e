// Runs a plan of browser steps (JSON on stdin) in Debian's Chromium with playwright-core, for
// tests/integration/test_web.py: the test decides what to do and to expect, this only does it.
// env: PLAYWRIGHT_MODULES (node_modules holding playwright-core), CHROMIUM (the binary).
// Each step prints one JSON line; the first that fails prints its error and exits 1.
"use strict";
const path = require("path");
const { chromium } = require(path.join(process.env.PLAYWRIGHT_MODULES, "playwright-core"));

async function main() {
  const plan = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const browser = await chromium.launch({executablePath: process.env.CHROMIUM, headless: true,
                                         args: ["--no-sandbox", "--disable-gpu"]});
  const page = await browser.newPage({viewport: {width: 1400, height: 1000}, deviceScaleFactor: 1});
  const errors = [];
  page.on("pageerror", e => errors.push(String(e)));
  let current = null;
  try {
    for (const [i, step] of plan.entries()) {
      current = {step: i, do: step.do, what: step.what || step.selector || step.url || ""};
      const began = Date.now();
      const timeout = (step.timeout || 30) * 1000;
      let value = null;
      if (step.do === "goto") await page.goto(step.url, {timeout});
      else if (step.do === "click") await page.click(step.selector, {timeout});
      else if (step.do === "wait") await page.waitForSelector(step.selector, {timeout, state: step.state || "visible"});
      else if (step.do === "until") {
        // A string would be waited on as an expression (a function is always truthy): make it one.
        const predicate = new Function(`return (${step.js});`)();
        value = await (await page.waitForFunction(predicate, step.arg, {timeout, polling: 200})).jsonValue();
      }
      else if (step.do === "eval") value = await page.evaluate(step.js);
      else if (step.do === "screenshot") await page.screenshot({path: step.path, fullPage: true});
      else throw new Error(`unknown step ${JSON.stringify(step)}`);
      console.log(JSON.stringify({step: i, do: step.do, what: step.what || "", seconds: (Date.now() - began) / 1000, value}));
    }
    if (errors.length) throw new Error("the page threw: " + errors.join("; "));
  } catch (e) {
    console.log(JSON.stringify({...current, failed: String(e.message || e).split("\n").slice(0, 6).join("\n")}));
    await page.screenshot({path: process.env.FAILURE_SCREENSHOT || "/tmp/web-failure.png", fullPage: true}).catch(() => {});
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
main();

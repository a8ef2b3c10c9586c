// End-to-end test of the trace viewer page in headless Chromium (driven by playwright-core).
// Usage: PAGE=violation.html [BIG_PAGE=big.html] [RAFT_PAGE=raft.html] OUT=dir node view.test.mjs
import { chromium } from "playwright-core";
import { pathToFileURL } from "node:url";
import { mkdirSync } from "node:fs";
import path from "node:path";

const PAGE = process.env.PAGE;
const BIG_PAGE = process.env.BIG_PAGE;
const RAFT_PAGE = process.env.RAFT_PAGE;
const OUT = process.env.OUT || "out";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
if (!PAGE) {
  console.error("error: set PAGE to the generated HTML page");
  process.exit(2);
}
mkdirSync(OUT, { recursive: true });

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok    ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL  ${name}: ${e && e.message ? e.message.split("\n")[0] : e}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

async function open(file) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 720 } });
  const errors = [];
  const external = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith("file:") && !u.startsWith("data:") && !u.startsWith("about:")) external.push(u);
  });
  const t0 = Date.now();
  await page.goto(pathToFileURL(path.resolve(file)).href, { waitUntil: "load" });
  await page.waitForFunction(() => window.detsimView !== undefined, null, { timeout: 30000 });
  return { page, errors, external, loadMs: Date.now() - t0 };
}

try {
  const { page, errors, external } = await open(PAGE);

  await check("page loads without script errors", async () => {
    assert(errors.length === 0, `errors: ${errors.join(" | ")}`);
  });
  await check("lanes: one label per node, canvas sized", async () => {
    const v = await page.evaluate(() => ({
      lanes: window.detsimView.lanes,
      labels: document.querySelectorAll(".lane-label").length,
      names: Array.from(document.querySelectorAll(".lane-label")).map((e) => e.textContent),
      w: document.getElementById("lanes").width,
      h: document.getElementById("lanes").height,
    }));
    assert(v.lanes === 5 && v.labels === 5, `lanes ${v.lanes}, labels ${v.labels}`);
    assert(v.names[0].startsWith("s0"), `first label ${v.names[0]}`);
    assert(v.w > 200 && v.h > 100, `canvas ${v.w}x${v.h}`);
  });
  await check("arrows and events present and drawn", async () => {
    const v = await page.evaluate(() => ({ a: window.detsimView.arrows, e: window.detsimView.events, d: window.detsimView.drawn() }));
    assert(v.a > 0, `arrows ${v.a}`);
    assert(v.e > 0, `events ${v.e}`);
    assert(v.d.arrows > 0, `drawn arrows ${v.d.arrows}`);
  });
  await check("violation banner visible and names the property", async () => {
    const b = page.locator("#banner");
    assert(await b.isVisible(), "banner hidden");
    const text = await b.textContent();
    assert(/pong count/.test(text), `banner says: ${text}`);
    assert(/n=16/.test(text), `banner lacks the event: ${text}`);
  });
  await check("filters offer nodes and message kinds", async () => {
    const v = await page.evaluate(() => ({
      nodes: document.querySelectorAll("#filters .node-filter").length,
      kinds: Array.from(document.querySelectorAll("#filters .kind-filter")).map((l) => l.textContent.trim()),
    }));
    assert(v.nodes === 5, `node filters ${v.nodes}`);
    assert(v.kinds.includes("ping") && v.kinds.includes("pong"), `kinds ${v.kinds}`);
  });
  await check("#jump selects the violating event and shows it in #details", async () => {
    await page.click("#jump");
    const d = await page.locator("#details").textContent();
    assert(/n=16/.test(d), `details: ${d.slice(0, 200)}`);
    assert(/pong_received/.test(d), "details lack the event's payload");
    const sel = await page.evaluate(() => window.detsimView.selected());
    assert(sel && sel.type === "ev", `selection ${JSON.stringify(sel)}`);
  });
  await page.screenshot({ path: path.join(OUT, "viewer.png"), fullPage: true });
  await check("clicking a message arrow shows the message", async () => {
    await page.click("#t-reset");
    const p = await page.evaluate(() => window.detsimView.visibleArrow());
    assert(p, "no arrow in view to click");
    await page.mouse.click(p.x, p.y);
    const d = await page.locator("#details").textContent();
    assert(d.includes(`message id=${p.id}`), `details: ${d.slice(0, 200)}`);
    assert(/"seq"/.test(d), "details lack the message payload");
  });
  await check("hovering a message shows a tooltip", async () => {
    const p = await page.evaluate(() => window.detsimView.visibleArrow());
    await page.mouse.move(p.x, p.y);
    const tip = page.locator("#tip");
    assert(await tip.isVisible(), "tooltip hidden");
    assert(/message id=/.test(await tip.textContent()), "tooltip text");
  });
  await check("select(n) shows any event", async () => {
    const ok = await page.evaluate(() => window.detsimView.select(6));
    assert(ok === true, "select(6) returned false");
    const d = await page.locator("#details").textContent();
    assert(/event n=6 /.test(d) && /"timer"/.test(d), `details: ${d.slice(0, 200)}`);
    assert((await page.evaluate(() => window.detsimView.select(999999))) === false, "select of a missing event");
  });
  await check("wheel zooms and drag pans", async () => {
    await page.click("#t-reset");
    const box = await page.locator("#lanes").boundingBox();
    const before = await page.evaluate(() => window.detsimView.view());
    await page.mouse.move(box.x + box.width / 2, box.y + 10);
    await page.mouse.wheel(0, -400);
    await page.waitForTimeout(50);
    const zoomed = await page.evaluate(() => window.detsimView.view());
    assert(zoomed.t1 - zoomed.t0 < (before.t1 - before.t0) * 0.8, `span ${before.t1 - before.t0} -> ${zoomed.t1 - zoomed.t0}`);
    await page.mouse.move(box.x + box.width / 2, box.y + 10);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 - 150, box.y + 10, { steps: 5 });
    await page.mouse.up();
    const panned = await page.evaluate(() => window.detsimView.view());
    assert(panned.t0 > zoomed.t0, `t0 ${zoomed.t0} -> ${panned.t0}`);
    const from = await page.inputValue("#t-from");
    assert(Math.abs(parseFloat(from) * 1e6 - Math.max(0, panned.t0)) < 2, `from input ${from} vs ${panned.t0}`);
  });
  await check("time window inputs set the view", async () => {
    await page.fill("#t-from", "0.01");
    await page.fill("#t-to", "0.02");
    await page.click("#t-apply");
    const v = await page.evaluate(() => window.detsimView.view());
    assert(Math.abs(v.t0 - 10000) < 1 && Math.abs(v.t1 - 20000) < 1, JSON.stringify(v));
  });
  await check("kind and node filters hide arrows and lanes", async () => {
    await page.click("#t-reset");
    const all = await page.evaluate(() => window.detsimView.drawn().arrows);
    await page.locator("#filters .kind-filter", { hasText: "ping" }).locator("input").uncheck();
    const noPing = await page.evaluate(() => window.detsimView.drawn().arrows);
    assert(noPing < all, `arrows ${all} -> ${noPing}`);
    await page.locator("#filters .kind-filter", { hasText: "ping" }).locator("input").check();
    await page.locator("#filters .node-filter", { hasText: "s1" }).locator("input").uncheck();
    const v = await page.evaluate(() => ({
      shown: Array.from(document.querySelectorAll(".lane-label")).filter((e) => !e.hidden).length,
      arrows: window.detsimView.drawn().arrows,
    }));
    assert(v.shown === 4, `visible lanes ${v.shown}`);
    assert(v.arrows < all, `arrows with s1 hidden ${v.arrows}`);
    await page.locator("#filters .node-filter", { hasText: "s1" }).locator("input").check();
  });
  await check("no network access", async () => {
    assert(external.length === 0, `requests: ${external.join(", ")}`);
  });
  await page.close();

  if (BIG_PAGE) {
    const big = await open(BIG_PAGE);
    await check(`large trace loads (${big.loadMs} ms) without errors`, async () => {
      assert(big.errors.length === 0, big.errors.join(" | "));
      assert(big.loadMs < 30000, `load ${big.loadMs} ms`);
      const n = await big.page.evaluate(() => window.detsimView.events);
      assert(n >= 100000, `only ${n} events`);
    });
    await check("large trace stays responsive (frame times)", async () => {
      const times = await big.page.evaluate(() => {
        const v = window.detsimView, out = [];
        const whole = v.view();
        out.push(v.drawn().ms);
        const span = whole.t1 - whole.t0;
        for (const f of [0.3, 0.05, 0.005]) {
          v.setView(whole.t0 + span * 0.4, whole.t0 + span * (0.4 + f));
          out.push(v.drawn().ms);
        }
        v.setView(whole.t0, whole.t1);
        return out;
      });
      console.log(`      frame ms (whole run, 30%, 5%, 0.5%): ${times.map((t) => t.toFixed(1)).join(", ")}`);
      assert(Math.max(...times) < 400, `slowest frame ${Math.max(...times).toFixed(0)} ms`);
    });
    await check("large trace: clicking a message works", async () => {
      const v = await big.page.evaluate(() => {
        const w = window.detsimView.view();
        window.detsimView.setView(w.t0 + 1e6, w.t0 + 1.05e6);
        return window.detsimView.visibleArrow();
      });
      assert(v, "no arrow in view");
      await big.page.mouse.click(v.x, v.y);
      const d = await big.page.locator("#details").textContent();
      assert(d.includes("message id="), d.slice(0, 100));
    });
    await big.page.screenshot({ path: path.join(OUT, "viewer-big.png") });
    await big.page.close();
  }
  if (RAFT_PAGE) {
    const raft = await open(RAFT_PAGE);
    await check("Raft page: banner, roles and terms, jump", async () => {
      assert(raft.errors.length === 0, raft.errors.join(" | "));
      const b = await raft.page.locator("#banner").textContent();
      assert(/Violation: leader completeness/.test(b), b);
      const info = await raft.page.evaluate(() => {
        const d = JSON.parse(document.getElementById("trace-data").textContent);
        return { roles: d.roles.length, leaders: d.roles.filter((r) => r[2] === "leader").length, marks: d.marks.length };
      });
      assert(info.leaders > 0 && info.marks > 0, JSON.stringify(info));
      await raft.page.click("#jump");
      const d = await raft.page.locator("#details").textContent();
      const n = (b.match(/event n=(\d+)/) || [])[1];
      assert(n && d.includes(`event n=${n} `), `details: ${d.slice(0, 120)}`);
      assert(raft.external.length === 0, raft.external.join(", "));
    });
    await check("Raft page: the explanation's facts and its chain, highlighted and stepped", async () => {
      const facts = await raft.page.locator("#explain-facts").textContent();
      assert(/s2 leads term 26 without entry 252 \(term 17/.test(facts), facts);
      assert(/the election restriction \(Section 5\.4\.1\) was not applied/.test(facts), facts);
      const chain = await raft.page.evaluate(() => {
        const c = window.detsimView.chain();
        const d = JSON.parse(document.getElementById("trace-data").textContent);
        // each chain event names a record of the page with the same event number
        const same = c.events.every((e) => e.rec >= 0 && d.recs[e.rec] && d.recs[e.rec].n === e.n);
        return { len: c.events.length, at: c.at, same, items: document.querySelectorAll("#chain-list li").length, first: c.events[0], last: c.events[c.events.length - 1] };
      });
      assert(chain.len >= 5 && chain.len <= 15 && chain.items === chain.len, JSON.stringify(chain));
      assert(chain.same, "a chain event names a record with another event number");
      assert(chain.at === -1, `stepping starts before the first event, at ${chain.at}`);
      // the last event is the violation's: s2 becoming leader of term 26
      const b = await raft.page.locator("#banner").textContent();
      const vn = +(b.match(/event n=(\d+)/) || [])[1];
      assert(chain.last.n === vn && chain.last.node === 2, JSON.stringify(chain.last));
      // next ▶ selects the first chain event, then the second; previous goes back
      await raft.page.click("#chain-next");
      let sel = await raft.page.evaluate(() => window.detsimView.selected());
      let d = await raft.page.locator("#details").textContent();
      assert(sel && sel.rec === chain.first.rec && d.includes(`event n=${chain.first.n} `), `after next: ${JSON.stringify(sel)} ${d.slice(0, 80)}`);
      assert(await raft.page.locator("#chain-prev").isDisabled(), "previous enabled at the first step");
      await raft.page.click("#chain-next");
      const second = await raft.page.evaluate(() => ({ at: window.detsimView.chain().at, sel: window.detsimView.selected(), cur: document.querySelector("#chain-list li.current").dataset.k }));
      assert(second.at === 1 && second.cur === "1", JSON.stringify(second));
      await raft.page.click("#chain-prev");
      sel = await raft.page.evaluate(() => window.detsimView.selected());
      assert(sel.rec === chain.first.rec, `previous: ${JSON.stringify(sel)}`);
      // a click on the last list item jumps there; next stays at the end
      await raft.page.locator("#chain-list li").last().click();
      await raft.page.click("#chain-next", { force: true });
      const end = await raft.page.evaluate(() => ({ at: window.detsimView.chain().at, sel: window.detsimView.selected() }));
      assert(end.at === chain.len - 1 && end.sel.rec === chain.last.rec, JSON.stringify(end));
      d = await raft.page.locator("#chain-pos").textContent();
      assert(d.startsWith(`step ${chain.len} of ${chain.len}:`), d);
      // the highlight is drawn: magenta pixels (a colour only the chain uses) on the lanes
      const violet = await raft.page.evaluate(() => {
        const cv = document.getElementById("lanes"), ctx = cv.getContext("2d");
        const img = ctx.getImageData(0, 0, cv.width, cv.height).data;
        let n = 0;
        for (let i = 0; i < img.length; i += 4) if (img[i] > 200 && img[i + 1] < 70 && img[i + 2] > 200) n++;
        return n;
      });
      assert(violet > 50, `magenta chain pixels: ${violet}`);
    });
    await raft.page.mouse.move(5, 5);
    await raft.page.screenshot({ path: path.join(OUT, "viewer-raft.png") });
    await raft.page.close();
  }
} catch (e) {
  failed++;
  console.log(`FAIL  unexpected: ${e && e.stack ? e.stack : e}`);
} finally {
  await browser.close();
}
console.log(`browser test: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);

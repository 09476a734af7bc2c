// Drives Debian's chromium (headless) through the job manager's web UI with puppeteer-core:
// the overview, a running job's page (graph nodes, a non-zero rate), its checkpoints view (a
// row in the table), its exceptions view and the task managers page. Fails on any JavaScript
// error, console error, failed request or HTTP error status. Screenshots go to $WEIR_TEST_OUT.
//
// Environment: WEIR_UI_URL (http://127.0.0.1:PORT), WEIR_JOB_ID (a running job),
// WEIR_TEST_OUT (screenshot directory), CHROMIUM (default /usr/bin/chromium).
// A secure cluster (https URL): WEIR_TOKEN (the bearer token, typed into the UI's prompt) and
// WEIR_SPKI (the base64 SHA-256 of the job manager's public key, which chromium is told to
// trust: its certificate comes from a development CA). 401s for calls sent without the token
// are expected (the UI asks for it then); the prompt must have been answered.
// Run by ui_test.py, which starts the cluster and the job.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');

const base = process.env.WEIR_UI_URL;
const jobId = process.env.WEIR_JOB_ID;
const out = process.env.WEIR_TEST_OUT || path.join(__dirname, 'output');
if (!base || !jobId) {
  console.error('WEIR_UI_URL and WEIR_JOB_ID must be set (run ui_test.py)');
  process.exit(2);
}

function step(msg) { console.log(`[ui_test] ${msg}`); }

async function main() {
  fs.mkdirSync(out, {recursive: true});
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weir-chromium-'));
  const problems = [];
  const token = process.env.WEIR_TOKEN;
  const extra = process.env.WEIR_SPKI ?
      [`--ignore-certificate-errors-spki-list=${process.env.WEIR_SPKI}`] : [];
  let prompts = 0;
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,  // puppeteer adds --headless itself
    userDataDir,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--disable-dev-shm-usage', ...extra],
  });
  try {
    const page = await browser.newPage();
    page.on('console', (m) => {
      // Chromium logs every 401; the responses themselves are checked below.
      if (token && /status of 401/.test(m.text())) return;
      if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => {
      problems.push(`request failed: ${r.url()} (${r.failure() && r.failure().errorText})`);
    });
    page.on('response', (r) => {
      // Calls made before the UI had the token get 401 (the first one makes it ask); a call
      // that carried the token must not.
      if (r.status() === 401 && token && !r.request().headers()['authorization']) return;
      if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
    });
    page.on('dialog', async (d) => {
      if (d.type() === 'prompt' && token) {
        ++prompts;
        await d.accept(token);
      } else {
        problems.push(`unexpected ${d.type()} dialog: ${d.message()}`);
        await d.dismiss();
      }
    });
    await page.setViewport({width: 1440, height: 1000});

    step(`overview at ${base}/`);
    await page.goto(`${base}/#/overview`, {waitUntil: 'load'});
    const jobLink = `a.job-link[href="#/jobs/${jobId}"]`;
    await page.waitForSelector(jobLink, {timeout: 20000});
    await page.waitForFunction(
        () => document.querySelectorAll('#taskmanager-table tbody tr td:not(.empty)').length > 0,
        {timeout: 20000});
    await page.screenshot({path: path.join(out, 'ui-overview.png'), fullPage: true});

    step(`job page of ${jobId}`);
    // Clicked in the page: the overview re-renders on each refresh, so a handle taken before
    // the click may be detached by then.
    await page.$eval(jobLink, (a) => a.click());
    await page.waitForSelector('svg .task-node', {timeout: 20000});
    const nodes = await page.$$eval('svg .task-node', (n) => n.length);
    if (nodes < 1) throw new Error('no task nodes in the job graph');
    step(`${nodes} task node(s); waiting for a non-zero rate`);
    await page.waitForFunction(
        () => Array.from(document.querySelectorAll('svg .task-rate'))
                  .some((e) => parseFloat(e.getAttribute('data-rate')) > 0),
        {timeout: 60000, polling: 500});
    const rates = await page.$$eval('svg .task-rate', (els) => els.map((e) => e.textContent));
    step(`rates: ${rates.join(' | ')}`);
    const edges = await page.$$eval('svg .edge-label', (els) => els.map((e) => e.textContent));
    step(`edges: ${edges.join(' | ')}`);
    // A few refreshes, so that the throughput chart has points.
    await new Promise((r) => setTimeout(r, 5000));
    await page.screenshot({path: path.join(out, 'ui-job.png'), fullPage: true});

    step('a task\'s subtasks (click on its node)');
    await page.click('svg .task-node');
    await page.waitForFunction(
        () => document.querySelectorAll('#subtasks tbody tr td:not(.empty)').length > 0,
        {timeout: 20000});
    await page.screenshot({path: path.join(out, 'ui-job-subtasks.png'), fullPage: true});

    step('checkpoints view');
    await page.click('a#checkpoints-link');
    await page.waitForFunction(
        () => document.querySelectorAll('#checkpoint-table tbody tr td:not(.empty)').length > 0,
        {timeout: 60000, polling: 500});
    const rows = await page.$$eval('#checkpoint-table tbody tr', (r) => r.length);
    step(`${rows} checkpoint row(s)`);
    await page.screenshot({path: path.join(out, 'ui-checkpoints.png'), fullPage: true});

    step('exceptions view');
    await page.click('a#exceptions-link');
    await page.waitForSelector('#exception-table', {timeout: 20000});
    await page.screenshot({path: path.join(out, 'ui-exceptions.png'), fullPage: true});

    step('task managers page');
    await page.click('a#nav-taskmanagers');
    await page.waitForFunction(
        () => document.querySelectorAll('#taskmanager-table tbody tr td:not(.empty)').length > 0,
        {timeout: 20000});
    await page.screenshot({path: path.join(out, 'ui-taskmanagers.png'), fullPage: true});
  } finally {
    await browser.close();
    fs.rmSync(userDataDir, {recursive: true, force: true});
  }
  if (token && prompts === 0) problems.push('the UI never asked for the bearer token');
  if (problems.length > 0) {
    throw new Error(`the UI reported problems:\n  ${problems.join('\n  ')}`);
  }
  step(`ok${token ? ` (secure: ${prompts} token prompt(s))` : ''}; screenshots in ${out}`);
}

main().catch((e) => {
  console.error(`[ui_test] FAILED: ${e.stack || e}`);
  process.exit(1);
});

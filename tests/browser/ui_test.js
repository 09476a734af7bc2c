// Drives Debian's chromium (headless) through the job manager's web UI with puppeteer-core:
// the overview, a running job's page (graph nodes, a non-zero rate), its checkpoints view (a
// row in the table), its exceptions view and the task managers page. Fails on any JavaScript
// error, console error, failed request or HTTP error status. Screenshots go to $WEIR_TEST_OUT.
//
// Environment: WEIR_UI_URL (http://127.0.0.1:PORT), WEIR_JOB_ID (a running job),
// WEIR_TEST_OUT (screenshot directory), CHROMIUM (default /usr/bin/chromium).
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
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,  // puppeteer adds --headless itself
    userDataDir,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => {
      problems.push(`request failed: ${r.url()} (${r.failure() && r.failure().errorText})`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
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
    await page.click(jobLink);
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
  if (problems.length > 0) {
    throw new Error(`the UI reported problems:\n  ${problems.join('\n  ')}`);
  }
  step(`ok; screenshots in ${out}`);
}

main().catch((e) => {
  console.error(`[ui_test] FAILED: ${e.stack || e}`);
  process.exit(1);
});

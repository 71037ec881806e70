import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import chromium from '@sparticuz/chromium'
import puppeteer, { type Browser } from 'puppeteer-core'

/**
 * Headless Chromium from the npm package @sparticuz/chromium (installed by `npm ci`, nothing downloaded):
 * its binary is unpacked once into the temp folder. Unpacked into a staging folder and renamed into place,
 * so that two test processes starting at once never run a half-written binary (measured: ETXTBSY).
 */
async function chromiumPath (): Promise<string> {
  const dir = join(tmpdir(), 'sparticuz-chromium-153.0.0')
  if (existsSync(join(dir, '.complete'))) return join(dir, 'chromium')
  const staging = mkdtempSync(join(tmpdir(), 'sparticuz-staging-'))
  const previous = process.env.TMPDIR
  // The package unpacks into os.tmpdir(): point it at the staging folder for this one call.
  process.env.TMPDIR = staging
  try {
    await chromium.executablePath()
  } finally {
    if (previous === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = previous
  }
  writeFileSync(join(staging, '.complete'), '')
  try {
    renameSync(staging, dir)
  } catch (err) {
    if (!['ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err
    rmSync(staging, { recursive: true, force: true })
  }
  return join(dir, 'chromium')
}

export async function launchBrowser (): Promise<Browser> {
  return await puppeteer.launch({
    executablePath: await chromiumPath(),
    // --single-process is for Lambda; the package's own --headless flag is quoted oddly, and puppeteer adds one.
    args: chromium.args.filter((a) => a !== '--single-process' && !a.startsWith('--headless')),
    headless: 'shell',
    defaultViewport: { width: 1200, height: 800 }
  })
}

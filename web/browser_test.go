package web_test

// The browser test: Debian's Chromium, headless, driven by chromedp against
// a real `credits serve --demo` (the binary, built into a temp dir and run as
// a child process). It checks what the page shows, and saves a screenshot of
// each state under artifacts/browser/ (ignored by git: /artifacts/).

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

const (
	chromiumPath  = "/usr/bin/chromium"
	testAdminKey  = "browser-test-admin-key-5f1c"
	browserBudget = 90 * time.Second
)

// repoRoot is the module root: the test runs in web/.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("no go.mod in %s: %v", dir, err)
	}
	return dir
}

// serveDemo builds cmd/credits and runs `credits serve --demo` on a free
// port with a fresh database; it returns the base URL.
func serveDemo(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "credits")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	build := exec.Command(goBin, "build", "-o", bin, "./cmd/credits")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/credits: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, "serve", "--demo", "--addr", "127.0.0.1:0")
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CREDITS_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env,
		"CREDITS_ADMIN_KEY="+testAdminKey,
		"CREDITS_DB="+filepath.Join(tmp, "credits.db"),
		"CREDITS_AI_PROVIDER=demo",
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var logBuf bytes.Buffer
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		re := regexp.MustCompile(`msg=listening addr=(http://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			logBuf.WriteString(line + "\n")
			logMu.Unlock()
			if m := re.FindStringSubmatch(line); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		err := cmd.Wait()
		if t.Failed() || err != nil {
			logMu.Lock()
			t.Logf("credits serve (exit: %v) log:\n%s", err, logBuf.String())
			logMu.Unlock()
		}
	})
	select {
	case addr := <-addrc:
		return addr
	case <-done:
		t.Fatal("credits serve exited before listening")
	case <-time.After(20 * time.Second):
		t.Fatal("credits serve did not log its listening address within 20 s")
	}
	return ""
}

// browserCtx starts headless Chromium with exactly the flags CI uses.
func browserCtx(t *testing.T, parent context.Context) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(parent,
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// page drives one tab.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string // screenshots
	n    int

	mu       sync.Mutex
	problems []string // uncaught exceptions and console errors
}

func newPage(t *testing.T, ctx context.Context, base, dir string) *page {
	p := &page{t: t, ctx: ctx, base: base, dir: dir}
	if err := chromedp.Listen(ctx, func(ev any) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			p.problems = append(p.problems, "exception: "+ev.ExceptionDetails.Text+describe(ev.ExceptionDetails.Exception))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				p.problems = append(p.problems, "console."+string(ev.Type)+": "+strings.Join(parts, " "))
			}
		case *cdplog.EventEntryAdded:
			// CSP violations and the like; failed requests (the 402 and
			// 502 the test provokes) are the network's, and expected.
			if e := ev.Entry; e != nil && e.Level == cdplog.EntryLevelError && e.Source != cdplog.EntrySourceNetwork {
				p.problems = append(p.problems, "log."+string(e.Source)+": "+e.Text+" "+e.URL)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	return p
}

// watchLog turns on the Log domain (it replays what was logged so far).
func (p *page) watchLog() {
	p.t.Helper()
	if _, err := chromedp.Call(p.ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		p.t.Fatalf("Log.enable: %v", err)
	}
}

func describe(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	return " " + o.Description
}

func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		p.t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls a JavaScript condition until it is true.
func (p *page) waitFor(what, expr string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		p.t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// text is what an element shows.
func (p *page) text(sel string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? "<missing>").replace(/\s+/g, " ").trim()`, sel))
}

// count is the credit count next to the chatbox's input, as shown.
const countJS = `Number((document.querySelector('[data-testid=chat-credits]').textContent || '').replace(/[^0-9]/g, '') || -1)`

func (p *page) count() int { p.t.Helper(); return eval[int](p, countJS) }

func (p *page) waitCount(n int) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("the count to be %d", n), fmt.Sprintf(`%s === %d && /^[0-9,]+$/.test(document.querySelector('[data-testid=chat-credits]').textContent)`, countJS, n))
}

// shot saves a full-page PNG, once the ledger and chart have caught up
// with the count (the newest entry's balance is the count).
func (p *page) shot(name string) {
	p.t.Helper()
	// From the top: a full-page capture of a scrolled page draws the
	// sticky header and the modal's backdrop where the viewport was.
	_ = chromedp.Do(p.ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	_, _ = chromedp.Run(p.ctx, chromedp.Poll[bool](`document.querySelector('#ledger-body').dataset.available === String(`+countJS+`)`,
		chromedp.WithPollingTimeout(3*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
	buf, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p.n++
	file := filepath.Join(p.dir, fmt.Sprintf("%02d-%s.png", p.n, name))
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
	}
}

func (p *page) problemsSoFar() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

// adminPOST calls the API as the builder's backend would, with the admin key.
func adminPOST(t *testing.T, url, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", fmt.Sprintf("browser-test-%d", time.Now().UnixNano()))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s %s", url, res.Status, b)
	}
}

func TestBrowserDemoPage(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := "the browser test needs Debian's Chromium at " + chromiumPath + ": install it with `apt-get update && apt-get install -y chromium` (.ci/run does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	start := time.Now()
	base := serveDemo(t)
	t.Logf("build and start: %v", time.Since(start).Round(time.Millisecond))
	dir := filepath.Join(repoRoot(t), "artifacts", "browser")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	for _, f := range old {
		_ = os.Remove(f)
	}

	ctx, cancel := context.WithTimeout(context.Background(), browserBudget)
	defer cancel()
	bctx := browserCtx(t, ctx)
	p := newPage(t, bctx, base, dir)
	defer func() {
		if probs := p.problemsSoFar(); len(probs) > 0 {
			t.Errorf("the page logged errors:\n%s", strings.Join(probs, "\n"))
		}
	}()

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow() // the later steps build on this one
		}
	}

	// The page: demo-free, 250 credits, live.
	p.do("open the page",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(base+"/#demo-free"),
	)
	p.watchLog()
	p.waitFor("the page to start", `document.body.dataset.ready === "true"`)
	p.waitCount(250)
	p.waitFor("the stream to be live", `document.querySelector('#live').dataset.state === "live"`)
	if html := eval[string](p, `document.documentElement.outerHTML`); strings.Contains(html, testAdminKey) {
		t.Fatal("the page holds the admin key")
	}
	if got := p.text("[data-testid=avatar-cost]"); got != "Free" {
		t.Errorf("the avatar button's cost label = %q, want Free", got)
	}
	p.shot("page")

	step("rewrite costs 1", func(t *testing.T) {
		p.t = t
		p.do("rewrite",
			chromedp.Click(chromedp.CSS(`[data-field="Hero headline"]`)),
			chromedp.SendKeys(chromedp.ID("chat-input"), "make it friendlier"),
			chromedp.Click(chromedp.ID("chat-send")),
		)
		p.waitCount(249)
		p.waitFor("the rewritten headline", `document.querySelector('[data-field="Hero headline"]').textContent.startsWith("[demo rewrite: make it friendlier]")`)
		p.shot("rewrite")
	})

	step("section costs 10", func(t *testing.T) {
		p.t = t
		p.do("section",
			chromedp.Click(chromedp.CSS(`input[name=mode][value=section_generation]`)),
			chromedp.SendKeys(chromedp.ID("chat-input"), "opening hours and how to order ahead"),
			chromedp.Click(chromedp.ID("chat-send")),
		)
		p.waitCount(239)
		p.waitFor("the new section", `[...document.querySelectorAll('[data-testid=generated-section]')].some(s => s.textContent.includes("Opening Hours And How To Order Ahead") && s.textContent.includes("Demo output"))`)
		p.shot("section")
	})

	step("a change through the API shows live", func(t *testing.T) {
		p.t = t
		adminPOST(t, base+"/v1/workspaces/demo-free/charges", `{"operation":"section_generation","capture":true}`)
		p.waitCount(229)
		p.shot("api-change")
	})

	step("a change from another tab shows live", func(t *testing.T) {
		p.t = t
		tab, closeTab := chromedp.NewContext(bctx)
		defer closeTab()
		q := newPage(t, tab, base, dir)
		q.do("open a second tab", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base+"/#demo-free"))
		q.watchLog()
		q.waitFor("the second tab to start", `document.body.dataset.ready === "true"`)
		q.waitCount(229)
		q.do("rewrite in the second tab",
			chromedp.Click(chromedp.CSS(`[data-field="Hero text"]`)),
			chromedp.SendKeys(chromedp.ID("chat-input"), "shorter"),
			chromedp.Click(chromedp.ID("chat-send")),
		)
		q.waitCount(228)
		p.waitCount(228) // the first tab
		if probs := q.problemsSoFar(); len(probs) > 0 {
			t.Errorf("the second tab logged errors:\n%s", strings.Join(probs, "\n"))
		}
	})

	step("a failed operation shows an error and charges nothing", func(t *testing.T) {
		p.t = t
		p.do("failing rewrite",
			chromedp.Click(chromedp.CSS(`input[name=mode][value=content_rewrite]`)),
			chromedp.Click(chromedp.CSS(`[data-field="Hero headline"]`)),
			chromedp.SendKeys(chromedp.ID("chat-input"), "[fail] make it fail"),
			chromedp.Click(chromedp.ID("chat-send")),
		)
		p.waitFor("the failure message", `document.querySelector('[data-testid=operation-failed]')?.textContent.includes("nothing was charged")`)
		// The hold and its release both reach the stream; the count
		// settles back where it was.
		p.waitFor("the ledger to show the release", `[...document.querySelectorAll('#ledger-body tr')].some(r => r.textContent.includes("Released"))`)
		p.waitCount(228)
		if h := p.text(`[data-field="Hero headline"]`); strings.Contains(h, "make it fail") {
			t.Errorf("the failed rewrite changed the page: %q", h)
		}
		p.shot("failed")
	})

	step("image modal", func(t *testing.T) {
		p.t = t
		p.do("open the image modal", chromedp.Click(chromedp.ID("open-image")))
		p.waitFor("the modal", `document.querySelector('#image-dialog').open`)
		if got := p.text("[data-testid=modal-credits]"); got != "228" {
			t.Errorf("the modal's balance = %q, want 228", got)
		}
		if c1, c2 := p.text("[data-testid=cost-image_1k]"), p.text("[data-testid=cost-image_2k]"); c1 != "30 credits" || c2 != "60 credits" {
			t.Errorf("size costs = %q, %q; want 30 credits, 60 credits", c1, c2)
		}
		p.do("generate 1K",
			chromedp.SendKeys(chromedp.ID("image-prompt"), "warm sourdough loaves on a wooden counter"),
			chromedp.Click(chromedp.ID("image-generate")),
		)
		p.waitFor("a 1024 image", `!document.querySelector('#image-preview').hidden && document.querySelector('[data-testid=image-size]').textContent === "1024 × 1024" && document.querySelector('#image-result').naturalWidth === 1024`)
		p.waitCount(198)
		p.waitFor("the modal's balance", `document.querySelector('[data-testid=modal-credits]').textContent === "198"`)
		p.shot("image-1k")
		p.do("generate 2K",
			chromedp.Click(chromedp.CSS(`input[name=size][value=image_2k]`)),
			chromedp.Click(chromedp.ID("image-generate")),
		)
		p.waitFor("a 2048 image", `!document.querySelector('#image-preview').hidden && document.querySelector('[data-testid=image-size]').textContent === "2048 × 2048" && document.querySelector('#image-result').naturalWidth === 2048`)
		p.waitCount(138)
		p.shot("image-2k")
		for _, want := range []int{78, 18} {
			p.do("generate 2K again", chromedp.Click(chromedp.ID("image-generate")))
			p.waitCount(want)
			p.waitFor("the image", `!document.querySelector('#image-preview').hidden`)
		}
	})

	step("not enough credits, then upgrade", func(t *testing.T) {
		p.t = t
		p.do("generate 2K with 18 credits", chromedp.Click(chromedp.ID("image-generate")))
		p.waitFor("the insufficient-credits message", `!!document.querySelector('#image-alert [data-testid=insufficient]')`)
		if b, r := p.text("#image-alert [data-testid=short-balance]"), p.text("#image-alert [data-testid=short-required]"); b != "18" || r != "60" {
			t.Errorf("the 402 message shows balance %q and required %q; want 18 and 60", b, r)
		}
		if !eval[bool](p, `document.querySelector('#image-preview').hidden && !document.querySelector('#image-result').getAttribute('src')`) {
			t.Error("an image shows after the 402")
		}
		if got := p.text("#image-alert [data-testid=upgrade-button]"); !strings.Contains(got, "Starter") {
			t.Errorf("upgrade button = %q", got)
		}
		p.waitCount(18)
		p.shot("insufficient")

		p.do("upgrade", chromedp.Click(chromedp.CSS(`#image-alert [data-testid=upgrade-button]`)))
		p.waitCount(18 + 750) // Free → Starter adds 1000 − 250 at once
		p.waitFor("the upgrade notice", `!!document.querySelector('#image-alert [data-testid=upgraded]')`)
		p.waitFor("the switcher to say Starter", `document.querySelector('.seg[data-ws=demo-free]').textContent.includes("Starter")`)
		p.shot("upgraded")
		p.do("try again", chromedp.Click(chromedp.CSS(`#image-alert [data-testid=try-again]`)))
		p.waitCount(768 - 60)
		p.waitFor("the image", `!document.querySelector('#image-preview').hidden`)
		p.do("use it on the page", chromedp.Click(chromedp.ID("image-use")))
		p.waitFor("the image on the canvas", `!document.querySelector('#image-dialog').open && document.querySelector('#hero-img').naturalWidth === 2048`)
	})

	step("keyboard: Enter opens the modal, Escape closes it", func(t *testing.T) {
		p.t = t
		p.do("Enter on the image button", chromedp.Focus(chromedp.ID("open-image")), chromedp.KeyEvent("\r"))
		p.waitFor("the modal with the focus on its prompt", `document.querySelector('#image-dialog').open && document.activeElement === document.querySelector('#image-prompt')`)
		p.do("press Escape", chromedp.KeyEvent(kb.Escape))
		p.waitFor("the modal to close", `!document.querySelector('#image-dialog').open`)
		p.waitFor("the focus back on its button", `document.activeElement === document.querySelector('#open-image')`)
	})

	step("avatar selection is free", func(t *testing.T) {
		p.t = t
		before := p.count()
		p.do("open the avatars", chromedp.Click(chromedp.ID("open-avatar")))
		p.waitFor("the library", `document.querySelector('#avatar-dialog').open && document.querySelectorAll('.avatar-btn').length === 12`)
		if got := p.text("[data-testid=avatar-dialog-cost]"); got != "Free" {
			t.Errorf("the avatar dialog's cost label = %q, want Free", got)
		}
		p.shot("avatars")
		p.do("choose Owl", chromedp.Click(chromedp.CSS(`.avatar-btn[data-avatar=avatar_owl]`)))
		p.waitFor("the avatar on the page", `document.querySelector('#team-avatar').alt === "Avatar: Owl" && !document.querySelector('#avatar-dialog').open`)
		p.waitFor("the free selection in the ledger", `[...document.querySelectorAll('#ledger-body tr')].some(r => r.textContent.includes("Avatar"))`)
		if after := p.count(); after != before {
			t.Errorf("choosing an avatar changed the count from %d to %d", before, after)
		}
	})

	step("usage and estimator", func(t *testing.T) {
		p.t = t
		p.waitFor("the chart", `document.querySelectorAll('[data-testid=usage-chart] svg rect[fill]').length >= 3`)
		p.waitFor("the estimate", `document.querySelector('[data-testid=estimate-total]')?.textContent === "205 credits" && document.querySelector('[data-testid=estimate-answer]').textContent.startsWith("Free fits")`)
		if got := p.text("[data-testid=reset-date]"); !strings.HasPrefix(got, "Credits reset on ") {
			t.Errorf("reset date = %q", got)
		}
		if n := eval[int](p, `document.querySelectorAll('#ledger-body tr').length`); n < 10 {
			t.Errorf("the ledger shows %d rows", n)
		}
		p.shot("usage")
	})

	step("switch workspace", func(t *testing.T) {
		p.t = t
		p.do("switch to Pro", chromedp.Click(chromedp.CSS(`.seg[data-ws=demo-pro]`)))
		p.waitCount(5000)
		p.waitFor("the header", `document.querySelector('[data-testid=header-credits]').textContent === "5,000"`)
	})

	step("phone width", func(t *testing.T) {
		p.t = t
		p.do("375 px", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile, chromedp.EmulatePortrait, chromedp.EmulateTouch, chromedp.EmulateScale(2)),
			chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		p.waitFor("no sideways scrolling", `document.documentElement.clientWidth === 375 && document.documentElement.scrollWidth <= 375`)
		p.shot("phone")
	})
	t.Logf("browser test total: %v", time.Since(start).Round(time.Millisecond))
}

package jobs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"anprsec/config"
	"anprsec/domain"
	"anprsec/drop"
	"anprsec/istat"
	"anprsec/pki"
	"anprsec/secret"
	"anprsec/store"
)

// Benchmarks of the certificate batch (README, "Performance"), meant to run
// together so that their ratios are comparable:
//
//	go test -run '^$' -bench . -benchtime 1x ./jobs/
//
// Each reports certs/s for N certificates (ANPRSEC_BENCH_CERTS, default
// 200), signed by one RSA-4096 development CA made once outside the timers.

func benchCerts(b *testing.B) int {
	if s := os.Getenv("ANPRSEC_BENCH_CERTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("ANPRSEC_BENCH_CERTS=%q: want a positive number", s)
		}
		return n
	}
	return 200
}

var benchCA struct {
	once      sync.Once
	dir       string
	cert, key string
	err       error
}

// benchCAFiles makes the RSA-4096 development CA once per process.
func benchCAFiles(b *testing.B) (string, string) {
	benchCA.once.Do(func() {
		benchCA.dir, benchCA.err = os.MkdirTemp("", "anprsec-bench-ca")
		if benchCA.err != nil {
			return
		}
		benchCA.cert = filepath.Join(benchCA.dir, "ca.crt")
		benchCA.key = filepath.Join(benchCA.dir, "ca.key")
		_, benchCA.err = pki.CreateDevCA(benchCA.cert, benchCA.key, time.Now())
	})
	if benchCA.err != nil {
		b.Fatal(benchCA.err)
	}
	return benchCA.cert, benchCA.key
}

func reportRate(b *testing.B, n int) {
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "certs/s")
}

// cpuTime is the CPU time (user and system) of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// warmFloorCPU is the CPU time a certificate of the last BenchmarkWarmFloor
// took: on a machine whose cores other work shares, the ratio of CPU times
// (cpu_x_floor) moves less than the ratio of rates.
var warmFloorCPU time.Duration

// benchEnv is a fresh store with n requests spread over comuni (10 a
// comune), a local drop and the shared CA.
func benchEnv(b *testing.B, n int) *Env {
	b.Helper()
	dir := b.TempDir()
	st, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), Key: bytes.Repeat([]byte{1}, secret.KeySize)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	d, err := drop.NewLocal(filepath.Join(dir, "drop"))
	if err != nil {
		b.Fatal(err)
	}
	cfg := config.Default(dir)
	cfg.PKI.CACert, cfg.PKI.CAKey = benchCAFiles(b)
	if cfg.PKI.BatchMax < n {
		cfg.PKI.BatchMax = n
	}
	sealer, err := store.NewSealer(bytes.Repeat([]byte{7}, secret.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	loc, _ := time.LoadLocation(cfg.Timezone)
	err = st.Update(func(tx *store.Tx) error {
		for i := 0; i < n; i++ {
			ist := fmt.Sprintf("%06d", 1001+i/10)
			if i%10 == 0 {
				if err := tx.PutComune(&domain.Comune{ISTAT: ist, Name: "Comune " + ist, Province: ist[:3]}); err != nil {
					return err
				}
			}
			code := fmt.Sprintf("%s-PC-%04d", ist, i%10+1)
			if err := tx.PutPostazione(&domain.Postazione{Code: code, ISTAT: ist, State: domain.CertRichiesta}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return &Env{Config: cfg, Store: st, Drop: d, Comuni: istat.Default(), Loc: loc, Sealer: sealer, Log: discardLog()}
}

func benchRun(b *testing.B, env *Env, job Job) map[string]int {
	b.Helper()
	r := &Run{ID: "bench", Log: discardLog(), Counts: map[string]int{}}
	if err := job.Run(context.Background(), env, r); err != nil {
		b.Fatal(err)
	}
	return r.Counts
}

// BenchmarkKeygenFloor: N RSA-2048 keys on runtime.NumCPU() workers, the
// floor of a batch without a pool.
func BenchmarkKeygenFloor(b *testing.B) {
	n := benchCerts(b)
	benchCAFiles(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ders, err := generatePoolKeys(context.Background(), pki.KeyRSA2048, n)
		if err != nil || len(ders) != n {
			b.Fatalf("%d keys, %v", len(ders), err)
		}
	}
	reportRate(b, n)
}

// BenchmarkBatchColdPool: the certificati job end to end for N postazioni
// (key, sign, P12, commit, ZIP, publication), no pool.
func BenchmarkBatchColdPool(b *testing.B) {
	n := benchCerts(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		env := benchEnv(b, n)
		b.StartTimer()
		c := benchRun(b, env, certificatiJob)
		if c["issued"] != n || c["pool_keys"] != 0 {
			b.Fatalf("counts %v", c)
		}
	}
	reportRate(b, n)
}

// warmFloorRate is the certs/s of the last BenchmarkWarmFloor of this
// process, 0 when it did not run: BenchmarkBatchWarmPool reports its rate
// against it (x_floor), so that both come from the same run.
var warmFloorRate float64

// BenchmarkWarmFloor: the floor of a batch with a warm pool, what it cannot
// avoid for each of N certificates on runtime.NumCPU() workers (as the
// batch issues): the RSA-4096 CA signature of the workstation certificate
// (with the batch's discovery URLs) and its PKCS#12 in the legacy encoding
// with a fresh password, over keys made beforehand (64 RSA-2048 keys used
// in turn: the cost of signing and encoding does not depend on the key).
// Run it with BenchmarkBatchWarmPool, which follows it:
//
//	go test -run '^$' -bench 'WarmFloor|BatchWarmPool' -benchtime 1x ./jobs/
func BenchmarkWarmFloor(b *testing.B) {
	n := benchCerts(b)
	env := benchEnv(b, 0)
	issuer, err := CurrentCA(env)
	if err != nil {
		b.Fatal(err)
	}
	ca, err := issuer.Load()
	if err != nil {
		b.Fatal(err)
	}
	ders, err := generatePoolKeys(context.Background(), pki.KeyRSA2048, min(n, 64))
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]crypto.Signer, len(ders))
	for i, der := range ders {
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = k.(crypto.Signer)
	}
	disc, chain := issuer.Discovery(env.Config), issuer.Chain()
	b.ResetTimer()
	cpu0 := cpuTime()
	for it := 0; it < b.N; it++ {
		var next atomic.Int64
		errs := make([]error, runtime.NumCPU())
		var wg sync.WaitGroup
		for w := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					key := keys[i%len(keys)]
					code := fmt.Sprintf("%06d-PC-%04d", 1001+i/10, i%10+1)
					cert, _, err := ca.IssueWorkstation(pki.WorkstationRequest{Code: code, Comune: "Comune", PublicKey: key.Public(), Discovery: disc})
					if err == nil {
						var pw string
						if pw, err = pki.NewPassword(env.Config.PKI.PasswordAlphabet, env.Config.PKI.PasswordLength); err == nil {
							_, err = pki.EncodeP12(key, cert, chain, pw, pki.EncodingLegacy, code)
						}
					}
					if err != nil {
						errs[w] = err
						return
					}
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
	}
	warmFloorCPU = (cpuTime() - cpu0) / time.Duration(n*b.N)
	reportRate(b, n)
	b.ReportMetric(float64(warmFloorCPU)/1e6, "cpu_ms/cert")
	warmFloorRate = float64(n*b.N) / b.Elapsed().Seconds()
}

// BenchmarkBatchWarmPool: the same with N keys in the pool (filled by the
// pool-chiavi job outside the timer); x_floor is its rate over
// BenchmarkWarmFloor's in the same run.
func BenchmarkBatchWarmPool(b *testing.B) {
	n := benchCerts(b)
	var cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		env := benchEnv(b, n)
		env.Config.PKI.KeyPool = n
		if c := benchRun(b, env, poolJob); c["keys"] != n {
			b.Fatalf("pool counts %v", c)
		}
		b.StartTimer()
		cpu0 := cpuTime()
		c := benchRun(b, env, certificatiJob)
		cpu += cpuTime() - cpu0
		if c["issued"] != n || c["pool_keys"] != n {
			b.Fatalf("counts %v", c)
		}
	}
	reportWarm(b, n, cpu)
}

// reportWarm reports the rate of a warm batch of n certificates that took
// cpu in all, with its ratios to the last BenchmarkWarmFloor: x_floor, of
// the rates (≥ 1 is the floor's rate), and cpu_x_floor, of the CPU times
// per certificate (floor over batch: 1 when the batch does nothing more).
func reportWarm(b *testing.B, n int, cpu time.Duration) {
	reportRate(b, n)
	per := cpu / time.Duration(n*b.N)
	b.ReportMetric(float64(per)/1e6, "cpu_ms/cert")
	if warmFloorRate > 0 {
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds()/warmFloorRate, "x_floor")
		b.ReportMetric(float64(warmFloorCPU)/float64(per), "cpu_x_floor")
	}
}

// BenchmarkOpenSSLLoop: the peer, an OpenSSL CLI loop (genpkey, req, x509
// -req, pkcs12 -export) for N certificates, two loops in parallel.
func BenchmarkOpenSSLLoop(b *testing.B) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		b.Skip("openssl not installed")
	}
	n := benchCerts(b)
	caCert, caKey := benchCAFiles(b)
	const script = `set -e
cd "$WORK"
i=$FIRST
while [ $i -le $LAST ]; do
  code=$(printf '001001-PC-%04d' $i)
  "$OPENSSL" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out $code.key 2>/dev/null
  "$OPENSSL" req -new -key $code.key -subj "/CN=$code/O=Comune" -out $code.csr
  "$OPENSSL" x509 -req -in $code.csr -CA "$CACERT" -CAkey "$CAKEY" -set_serial 0x$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n') -days 1825 -sha256 -out $code.crt 2>/dev/null
  "$OPENSSL" pkcs12 -export -inkey $code.key -in $code.crt -certfile "$CACERT" -name $code -passout pass:653B739E -out $code.p12
  i=$((i+1))
done
`
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		work := b.TempDir()
		b.StartTimer()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		half := n / 2
		for w := 0; w < 2; w++ {
			first, last := 1, half
			if w == 1 {
				first, last = half+1, n
			}
			wg.Add(1)
			go func(w, first, last int) {
				defer wg.Done()
				cmd := exec.Command("sh", "-c", script)
				cmd.Env = append(os.Environ(), "WORK="+work, "OPENSSL="+openssl, "CACERT="+caCert, "CAKEY="+caKey,
					"FIRST="+strconv.Itoa(first), "LAST="+strconv.Itoa(last))
				if out, err := cmd.CombinedOutput(); err != nil {
					errs[w] = fmt.Errorf("%v: %s", err, out)
				}
			}(w, first, last)
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if m, _ := filepath.Glob(filepath.Join(work, "*.p12")); len(m) != n {
			b.Fatalf("%d P12 files, want %d", len(m), n)
		}
		b.StartTimer()
	}
	reportRate(b, n)
	b.ReportMetric(float64(runtime.NumCPU()), "cpus")
}

// TestMain removes the benchmarks' CA once every benchmark is done.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchCA.dir != "" {
		os.RemoveAll(benchCA.dir)
	}
	os.Exit(code)
}

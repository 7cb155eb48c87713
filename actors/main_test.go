package actors_test

import (
	"bufio"
	"fmt"
	"os"
	"testing"

	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// serverProcessEnv makes the test binary act as an echo server in its own
// process, so client-side memory can be measured without the server's share.
const serverProcessEnv = "ZENWS_ECHO_SERVER_PROCESS"

func TestMain(m *testing.M) {
	if os.Getenv(serverProcessEnv) == "1" {
		srv := wstest.NewServer()
		fmt.Println(srv.URL())
		// Serve until the parent closes stdin.
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		srv.Close()
		os.Exit(0)
	}
	testutil.VerifyTestMain(m)
}

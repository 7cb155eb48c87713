package supervision_test

import (
	"reflect"
	"testing"

	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/supervision"
)

// SendBalanced takes one operation's options (balancer.CallOption): a
// balancer's option, which it used to accept and ignore, does not compile.
func TestSendBalancedTakesCallOptions(t *testing.T) {
	ft := reflect.TypeOf((*supervision.Supervisor).SendBalanced)
	if got, want := ft.In(ft.NumIn()-1).Elem(), reflect.TypeOf(balancer.CallOption(nil)); !ft.IsVariadic() || got != want {
		t.Fatalf("SendBalanced takes ...%v, want ...%v", got, want)
	}
}

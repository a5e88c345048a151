package notify_test

import (
	"testing"

	"github.com/shoalml/shoal/internal/notify"
)

func TestNotifyWakesEveryWaiterOnce(t *testing.T) {
	b := notify.New()
	w1, w2 := b.Wait(), b.Wait()
	select {
	case <-w1:
		t.Fatal("Wait() channel closed before Notify")
	default:
	}
	b.Notify()
	<-w1
	<-w2
	select {
	case <-b.Wait():
		t.Fatal("Wait() after Notify returned a closed channel; want the next notification's")
	default:
	}
}
